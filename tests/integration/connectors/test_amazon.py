"""AmazonCreatorsClient against the wire-exact fake (tests/fakes/amazon.py), over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from opshub.config import Settings
from opshub.connectors.amazon import AmazonCreatorsClient, SourcingItem
from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorResponseError,
)
from opshub.connectors.http import RetryPolicy
from tests.fakes.amazon import FakeAmazonCreators
from tests.integration.connectors.shared import FAST


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAmazonCreators]:
    with FakeAmazonCreators() as fake:
        yield fake


@pytest.fixture
def amazon(server: FakeAmazonCreators) -> FakeAmazonCreators:
    server.reset()
    server.add_item("B0TENT0001", "Ultralight Trekking Tent 2P", price="149.99")
    server.add_item("B0TENT0002", "Family Tent 6P", price=None)  # no offer right now
    server.add_item("B0LAMP0001", "Camping Lamp")
    return server


@pytest.fixture
def pointed(settings: Settings, amazon: FakeAmazonCreators) -> Settings:
    return settings.model_copy(
        update={
            "amazon_lwa_url": amazon.lwa_url,
            "amazon_cognito_urls": {"2.1": amazon.cognito_url},
            "amazon_creators_api_url": amazon.api_url,
        }
    )


def tenant(amazon: FakeAmazonCreators, version: str = "3.0") -> dict[str, Any]:
    secret = {
        "client_id": f"amzn1.application-oa2-client.{uuid.uuid4().hex}",
        "client_secret": f"amzn1.oa2-cs.v1.{uuid.uuid4().hex}",
        "partner_tag": f"shop{uuid.uuid4().hex[:6]}-20",
        "credential_version": version,
        "marketplace": "www.amazon.com",
    }
    amazon.add_client(
        secret["client_id"], secret["client_secret"], version, partner_tag=secret["partner_tag"]
    )
    return secret


def client(
    http: httpx.AsyncClient, settings: Settings, secret: dict[str, Any], policy: RetryPolicy = FAST
) -> AmazonCreatorsClient:
    return AmazonCreatorsClient(http=http, settings=settings, secret=secret, policy=policy)


async def test_a_search_returns_items_with_their_offer_price(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon)

    items = await client(http, pointed, secret).search_items(keywords="tent", item_count=5)

    tag = secret["partner_tag"]
    assert items == [
        SourcingItem(
            asin="B0TENT0001",
            title="Ultralight Trekking Tent 2P",
            url=f"https://www.amazon.com/dp/B0TENT0001?tag={tag}&linkCode=ogi&th=1",
            price=Decimal("149.99"),
            currency="USD",
            display_price="$149.99",
        ),
        SourcingItem(
            asin="B0TENT0002",
            title="Family Tent 6P",
            url=f"https://www.amazon.com/dp/B0TENT0002?tag={tag}&linkCode=ogi&th=1",
            price=None,
            currency=None,
            display_price=None,
        ),
    ]
    (call,) = amazon.requests_for("search_items")
    (issued,) = amazon.issued
    assert call.headers["authorization"] == f"Bearer {issued}"
    assert call.headers["x-marketplace"] == "www.amazon.com"
    assert call.body == {
        "keywords": "tent",
        "searchIndex": "All",
        "itemCount": 5,
        "partnerTag": tag,
        "resources": ["itemInfo.title", "offersV2.listings.price"],
    }


async def test_a_2x_credential_gets_a_cognito_token_and_names_its_version(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon, version="2.1")

    items = await client(http, pointed, secret).search_items(keywords="lamp")

    assert [i.asin for i in items] == ["B0LAMP0001"]
    assert amazon.requests_for("lwa_token") == []
    (issued,) = amazon.issued
    (call,) = amazon.requests_for("search_items")
    assert call.headers["authorization"] == f"Bearer {issued}, Version 2.1"


async def test_partial_errors_beside_results_are_tolerated(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    amazon.partial_errors = [{"code": "ItemNotAccessible", "message": "Some items are hidden"}]
    secret = tenant(amazon)

    items = await client(http, pointed, secret).search_items(keywords="lamp")

    assert [i.asin for i in items] == ["B0LAMP0001"]


async def test_nothing_found_is_an_empty_list(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon)

    assert await client(http, pointed, secret).search_items(keywords="kayak") == []


async def test_a_rotated_client_secret_is_an_auth_error_without_secrets(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = {**tenant(amazon), "client_secret": f"amzn1.oa2-cs.v1.old-{uuid.uuid4().hex}"}

    with pytest.raises(ConnectorAuthError) as caught:
        await client(http, pointed, secret).search_items(keywords="tent")

    for value in secret.values():
        assert value not in caught.value.message
    assert amazon.requests_for("search_items") == []


async def test_an_expired_token_is_renewed_once(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon)
    sourcing = client(http, pointed, secret)
    await sourcing.search_items(keywords="tent")
    amazon.expire_access_tokens()

    items = await sourcing.search_items(keywords="lamp")

    assert [i.asin for i in items] == ["B0LAMP0001"]
    assert len(amazon.requests_for("lwa_token")) == 2


async def test_a_throttle_with_retry_after_is_waited_out_then_succeeds(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon)
    throttled = {"type": "ThrottlingException", "message": "Rate exceeded"}
    amazon.script("search_items", 429, throttled, headers={"Retry-After": "0.2"})

    items = await client(http, pointed, secret).search_items(keywords="lamp")

    assert [i.asin for i in items] == ["B0LAMP0001"]
    first, second = amazon.requests_for("search_items")
    assert second.at - first.at >= 0.2


async def test_a_throttle_longer_than_the_policy_allows_fails_at_once(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon)
    throttled = {"type": "ThrottlingException", "message": "Rate exceeded"}
    amazon.script("search_items", 429, throttled, headers={"Retry-After": "120"})

    with pytest.raises(ConnectorRateLimitedError) as caught:
        await client(http, pointed, secret).search_items(keywords="lamp")

    assert caught.value.retry_after == 120
    assert len(amazon.requests_for("search_items")) == 1


async def test_a_rejected_request_names_the_field(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon)

    with pytest.raises(ConnectorRequestError, match="itemCount"):
        await client(http, pointed, secret).search_items(keywords="tent", item_count=50)


async def test_an_unreadable_answer_is_a_response_error(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    secret = tenant(amazon)
    amazon.script("search_items", 200, {"searchResult": {"items": [{"title": "no asin"}]}})

    with pytest.raises(ConnectorResponseError):
        await client(http, pointed, secret).search_items(keywords="tent")


async def test_a_tenant_cannot_search_under_another_tenants_partner_tag(
    http: httpx.AsyncClient, amazon: FakeAmazonCreators, pointed: Settings
) -> None:
    mine, theirs = tenant(amazon), tenant(amazon)

    with pytest.raises(ConnectorRequestError, match="partnerTag"):
        await client(http, pointed, {**mine, "partner_tag": theirs["partner_tag"]}).search_items(
            keywords="tent"
        )
