"""GoogleAdsClient against the wire-exact fake (tests/fakes/google_ads.py), over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from opshub.config import Settings
from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorResponseError,
)
from opshub.connectors.google_ads import GoogleAdsClient
from opshub.connectors.http import RetryPolicy
from opshub.connectors.models import Campaign, Channel, PerformanceRow
from tests.fakes.google_ads import FakeGoogleAds
from tests.integration.connectors.shared import FAST, OCTOBER


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGoogleAds]:
    with FakeGoogleAds() as fake:
        yield fake


@pytest.fixture
def google(server: FakeGoogleAds) -> FakeGoogleAds:
    server.reset()
    return server


@pytest.fixture
def pointed(settings: Settings, google: FakeGoogleAds) -> Settings:
    return settings.model_copy(
        update={"google_oauth_url": google.token_url, "google_ads_api_url": google.api_url}
    )


def digits() -> str:
    return str(uuid.uuid4().int)[:10]


def tenant(google: FakeGoogleAds, *, currency: str = "EUR") -> dict[str, Any]:
    """A tenant's stored secret, and its own customer account in the fake."""
    secret = {
        "client_id": f"{uuid.uuid4().hex}.apps.googleusercontent.com",
        "client_secret": f"GOCSPX-{uuid.uuid4().hex}",
        "refresh_token": f"1//0g{uuid.uuid4().hex}",
        "developer_token": f"devtok-{uuid.uuid4().hex}",
        "login_customer_id": digits(),
        "customer_id": digits(),
    }
    google.add_client(secret["client_id"], secret["client_secret"])
    google.refresh_tokens.add(secret["refresh_token"])
    google.add_customer(
        secret["customer_id"], currency=currency, refresh_tokens=[secret["refresh_token"]]
    )
    return secret


def client(
    http: httpx.AsyncClient, settings: Settings, secret: dict[str, Any], policy: RetryPolicy = FAST
) -> GoogleAdsClient:
    return GoogleAdsClient(http=http, settings=settings, secret=secret, policy=policy)


def assert_no_secret(error: ConnectorError, secret: dict[str, Any], google: FakeGoogleAds) -> None:
    for value in [*secret.values(), *google.issued]:
        assert str(value) not in error.message


async def test_performance_is_daily_rows_per_campaign_in_major_units(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google, currency="USD")
    cid = secret["customer_id"]
    google.add_campaign(cid, "11", "Brand")
    google.add_campaign(cid, "12", "Generic")
    google.add_daily_stats(
        cid, "11", "2026-10-01", impressions=100, clicks=5, cost_micros=1_230_000, conversions=1.5
    )
    google.add_daily_stats(cid, "12", "2026-10-01", impressions=40, clicks=0, cost_micros=0)
    google.add_daily_stats(cid, "11", "2026-11-02", impressions=9, clicks=9, cost_micros=9)

    rows = await client(http, pointed, secret).performance(**OCTOBER)

    day = {"channel": Channel.google_ads, "date": date(2026, 10, 1), "currency": "USD"}
    assert rows == [
        PerformanceRow(
            **day,
            campaign_id="11",
            campaign="Brand",
            impressions=100,
            clicks=5,
            spend=Decimal("1.23"),
            conversions=1.5,
        ),
        PerformanceRow(
            **day,
            campaign_id="12",
            campaign="Generic",
            impressions=40,
            clicks=0,
            spend=Decimal(0),
            conversions=0,
        ),
    ]
    (call,) = google.requests_for("search")
    assert call.path == f"/v26/customers/{cid}/googleAds:search"
    assert call.headers["developer-token"] == secret["developer_token"]
    assert call.headers["login-customer-id"] == secret["login_customer_id"]


async def test_a_long_report_is_read_page_by_page(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    google.page_size = 2
    secret = tenant(google)
    google.add_campaign(secret["customer_id"], "11", "Brand")
    for day in range(1, 6):
        google.add_daily_stats(
            secret["customer_id"], "11", f"2026-10-0{day}", impressions=day, clicks=1, cost_micros=0
        )

    rows = await client(http, pointed, secret).performance(**OCTOBER)

    assert [r.impressions for r in rows] == [1, 2, 3, 4, 5]
    calls = google.requests_for("search")
    assert len(calls) == 3
    assert "pageToken" not in calls[0].body and all("pageToken" in c.body for c in calls[1:])
    assert not any("pageSize" in c.body for c in calls)


async def test_campaigns_carry_their_daily_budget_and_budget_resource(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    budget = google.add_campaign(
        secret["customer_id"], "11", "Brand", status="PAUSED", daily_budget_micros=25_500_000
    )

    campaigns = await client(http, pointed, secret).campaigns()

    assert campaigns == [
        Campaign(
            channel=Channel.google_ads,
            id="11",
            name="Brand",
            status="PAUSED",
            daily_budget=Decimal("25.5"),
            currency="EUR",
            budget_id=budget,
        )
    ]


async def test_a_budget_change_and_a_pause_land_in_the_account_once_each(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    budget = google.add_campaign(secret["customer_id"], "11", "Brand")
    ads = client(http, pointed, secret)

    outcome = await ads.set_daily_budget(
        campaign_id="11", budget_id=budget, amount=Decimal("42.50"), currency="EUR"
    )
    await ads.set_status(campaign_id="11", status="PAUSED")

    assert outcome["budget_id"] == budget and outcome["daily_budget"] == "42.50"
    (campaign,) = await ads.campaigns()
    assert (campaign.daily_budget, campaign.status) == (Decimal("42.5"), "PAUSED")
    assert len(google.requests_for("campaign_budgets_mutate")) == 1
    assert len(google.requests_for("campaigns_mutate")) == 1
    assert google.writes == [
        ("campaign_budgets_mutate", {"resourceName": budget, "amountMicros": "42500000"}),
        (
            "campaigns_mutate",
            {"resourceName": f"customers/{secret['customer_id']}/campaigns/11", "status": "PAUSED"},
        ),
    ]


async def test_resuming_a_campaign_enables_it(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    google.add_campaign(secret["customer_id"], "11", "Brand", status="PAUSED")

    await client(http, pointed, secret).set_status(campaign_id="11", status="ACTIVE")

    assert google.customers[secret["customer_id"]].campaigns["11"]["status"] == "ENABLED"


async def test_a_budget_in_another_currency_is_refused_before_any_write(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google, currency="USD")
    google.add_campaign(secret["customer_id"], "11", "Brand")

    with pytest.raises(ConnectorRequestError, match="USD"):
        await client(http, pointed, secret).set_daily_budget(
            campaign_id="11", budget_id=None, amount=Decimal(50), currency="EUR"
        )

    assert google.requests_for("campaign_budgets_mutate") == []


async def test_the_access_token_is_reused_until_it_expires_then_renewed(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    ads = client(http, pointed, secret)

    await ads.campaigns()
    await ads.campaigns()
    assert len(google.requests_for("token")) == 1
    google.expire_access_tokens()  # Google answers 401 OAUTH_TOKEN_EXPIRED from now on
    await ads.campaigns()

    assert len(google.requests_for("token")) == 2


async def test_a_revoked_refresh_token_is_an_auth_error_without_secrets(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    google.refresh_tokens.discard(secret["refresh_token"])  # invalid_grant

    with pytest.raises(ConnectorAuthError) as caught:
        await client(http, pointed, secret).campaigns()

    assert "invalid_grant" in caught.value.message
    assert_no_secret(caught.value, secret, google)
    assert google.requests_for("search") == []


async def test_a_401_that_survives_a_fresh_token_is_an_auth_error(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    google.developer_tokens = {"some-other-developer-token"}  # 401 DEVELOPER_TOKEN_INVALID

    with pytest.raises(ConnectorAuthError) as caught:
        await client(http, pointed, secret).campaigns()

    assert "DEVELOPER_TOKEN_INVALID" in caught.value.message
    assert_no_secret(caught.value, secret, google)
    assert len(google.requests_for("search")) == 2  # the first token, then one fresh one


async def test_a_quota_hint_is_waited_out_then_the_read_succeeds(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    google.add_campaign(secret["customer_id"], "11", "Brand")
    google.script_error(429, route="search", retry_delay="1s")

    campaigns = await client(http, pointed, secret).campaigns()

    assert [c.id for c in campaigns] == ["11"]
    first, second = google.requests_for("search")
    assert second.at - first.at >= 1.0


async def test_a_quota_hint_beyond_the_policy_fails_at_once(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    google.script_error(429, route="search", retry_delay="40s")

    with pytest.raises(ConnectorRateLimitedError) as caught:
        await client(http, pointed, secret).campaigns()

    assert caught.value.retry_after == 40
    assert len(google.requests_for("search")) == 1


async def test_an_unreadable_answer_is_a_response_error(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    secret = tenant(google)
    google.script("search", 200, {"results": [{"metrics": {"impressions": "lots"}}]})

    with pytest.raises(ConnectorResponseError):
        await client(http, pointed, secret).performance(**OCTOBER)


async def test_a_tenant_cannot_read_another_tenants_customer(
    http: httpx.AsyncClient, google: FakeGoogleAds, pointed: Settings
) -> None:
    mine, theirs = tenant(google), tenant(google)
    google.add_campaign(theirs["customer_id"], "77", "Their secret campaign")
    pointed_at_theirs = {**mine, "customer_id": theirs["customer_id"]}

    with pytest.raises(ConnectorRequestError) as caught:
        await client(http, pointed, pointed_at_theirs).campaigns()

    assert "Their secret campaign" not in caught.value.message
    assert_no_secret(caught.value, mine, google)
