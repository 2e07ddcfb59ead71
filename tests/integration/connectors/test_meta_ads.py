"""MetaAdsClient against the wire-exact Graph fake (tests/fakes/meta.py), over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
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
from opshub.connectors.http import RetryPolicy
from opshub.connectors.meta_ads import MetaAdsClient
from opshub.connectors.models import Campaign, Channel, PerformanceRow
from tests.fakes.meta import FakeMetaGraph
from tests.integration.connectors.shared import FAST, OCTOBER

APP_SECRET = f"appsecret-{uuid.uuid4().hex}"  # the platform's Meta app, shared by tenants


@pytest.fixture(scope="module")
def server() -> Iterator[FakeMetaGraph]:
    with FakeMetaGraph() as fake:
        yield fake


@pytest.fixture
def meta(server: FakeMetaGraph) -> FakeMetaGraph:
    server.reset()
    return server


@pytest.fixture
def pointed(settings: Settings, meta: FakeMetaGraph) -> Settings:
    return settings.model_copy(update={"meta_graph_url": meta.graph_url})


def tenant(meta: FakeMetaGraph, *, currency: str = "EUR", prefix: str = "act_") -> dict[str, Any]:
    """A tenant's stored secret and its own ad account in the fake."""
    account = str(uuid.uuid4().int)[:12]
    secret = {
        "access_token": f"EAAB{uuid.uuid4().hex}",
        "ad_account_id": f"{prefix}{account}",
        "app_secret": APP_SECRET,
    }
    meta.app_secret = APP_SECRET
    meta.require_appsecret_proof = True
    meta.add_token(secret["access_token"])
    meta.add_ad_account(account, currency=currency, tokens=[secret["access_token"]])
    return secret


def client(
    http: httpx.AsyncClient, settings: Settings, secret: dict[str, Any], policy: RetryPolicy = FAST
) -> MetaAdsClient:
    return MetaAdsClient(http=http, settings=settings, secret=secret, policy=policy)


def assert_no_secret(error: ConnectorError, secret: dict[str, Any]) -> None:
    for value in secret.values():
        assert value not in error.message


async def test_performance_is_daily_rows_with_deduplicated_conversions(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta, currency="USD")
    account = secret["ad_account_id"]
    meta.add_campaign(account, "2381", "Retargeting")
    actions = {
        # One purchase, reported three ways; one lead, two ways; one registration.
        "omni_purchase": 3,
        "purchase": 3,
        "offsite_conversion.fb_pixel_purchase": 3,
        "lead": 2,
        "offsite_conversion.fb_pixel_lead": 2,
        "offsite_conversion.fb_pixel_complete_registration": 1,
        "link_click": 40,
    }
    meta.add_daily_stats(
        account,
        "2381",
        "2026-10-02",
        impressions=361324,
        clicks=40,
        spend="5339.5",
        actions=actions,
    )
    meta.add_daily_stats(account, "2381", "2026-09-30", impressions=1, clicks=1, spend="1")

    rows = await client(http, pointed, secret).performance(**OCTOBER)

    assert rows == [
        PerformanceRow(
            date=date(2026, 10, 2),
            channel=Channel.meta_ads,
            campaign_id="2381",
            campaign="Retargeting",
            impressions=361324,
            clicks=40,
            spend=Decimal("5339.5"),
            conversions=6,
            currency="USD",
        )
    ]
    (call,) = meta.requests_for("insights")
    assert (call.params["level"], call.params["time_increment"]) == ("campaign", "1")
    assert json.loads(call.params["time_range"]) == {"since": "2026-10-01", "until": "2026-10-31"}
    proof = hmac.new(
        secret["app_secret"].encode(), secret["access_token"].encode(), hashlib.sha256
    ).hexdigest()
    assert call.params["appsecret_proof"] == proof


async def test_insights_are_read_cursor_by_cursor(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    meta.page_size = 2
    secret = tenant(meta)
    meta.add_campaign(secret["ad_account_id"], "2381", "Retargeting")
    for day in range(1, 6):
        meta.add_daily_stats(
            secret["ad_account_id"], "2381", f"2026-10-0{day}", impressions=day, clicks=0, spend="0"
        )

    rows = await client(http, pointed, secret).performance(**OCTOBER)

    assert [r.impressions for r in rows] == [1, 2, 3, 4, 5]
    calls = meta.requests_for("insights")
    assert len(calls) == 3
    assert "after" not in calls[0].params and all("after" in c.params for c in calls[1:])


@pytest.mark.parametrize("prefix", ["act_", ""], ids=["with_act_prefix", "digits_only"])
async def test_campaign_budgets_are_read_in_major_units(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings, prefix: str
) -> None:
    secret = tenant(meta, prefix=prefix)
    meta.add_campaign(secret["ad_account_id"], "2381", "Retargeting", daily_budget=6050)
    meta.add_campaign(secret["ad_account_id"], "2382", "Lifetime", status="PAUSED")

    campaigns = await client(http, pointed, secret).campaigns()

    common = {"channel": Channel.meta_ads, "currency": "EUR"}
    assert campaigns == [
        Campaign(**common, id="2381", name="Retargeting", status="ACTIVE", daily_budget=60.5),
        Campaign(**common, id="2382", name="Lifetime", status="PAUSED", daily_budget=None),
    ]


async def test_a_yen_budget_is_whole_yen_both_ways(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta, currency="JPY")
    meta.add_campaign(secret["ad_account_id"], "2381", "Tokyo", daily_budget=5000)
    ads = client(http, pointed, secret)

    (campaign,) = await ads.campaigns()
    await ads.set_daily_budget(
        campaign_id="2381", budget_id=None, amount=Decimal(7000), currency="JPY"
    )

    assert campaign.daily_budget == Decimal(5000)
    assert meta.writes == [("2381", {"daily_budget": "7000"})]


async def test_a_budget_change_and_a_pause_land_once_each(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta)
    meta.add_campaign(secret["ad_account_id"], "2381", "Retargeting", daily_budget=6000)
    ads = client(http, pointed, secret)

    await ads.set_daily_budget(
        campaign_id="2381", budget_id=None, amount=Decimal("42.50"), currency="EUR"
    )
    await ads.set_status(campaign_id="2381", status="PAUSED")

    (campaign,) = await ads.campaigns()
    assert (campaign.daily_budget, campaign.status) == (Decimal("42.5"), "PAUSED")
    assert meta.writes == [("2381", {"daily_budget": "4250"}), ("2381", {"status": "PAUSED"})]
    assert len(meta.requests_for("update_campaign")) == 2


async def test_an_expired_token_is_an_auth_error_without_secrets(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta)
    meta.expired_tokens.add(secret["access_token"])

    with pytest.raises(ConnectorAuthError) as caught:
        await client(http, pointed, secret).campaigns()

    assert "190" in caught.value.message
    assert_no_secret(caught.value, secret)


async def test_an_error_inside_an_http_200_is_a_failure(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta)
    meta.script_error(100, status=200, route="campaigns", message="(#100) Invalid parameter")

    with pytest.raises(ConnectorRequestError, match="Invalid parameter"):
        await client(http, pointed, secret).campaigns()


async def test_throttling_waits_the_minutes_meta_asks_for_then_succeeds(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta)
    meta.add_campaign(secret["ad_account_id"], "2381", "Retargeting")
    meta.script_error(80004, route="campaigns", regain_access_minutes=0.005)  # 0.3 s

    campaigns = await client(http, pointed, secret).campaigns()

    assert [c.id for c in campaigns] == ["2381"]
    first, second = meta.requests_for("campaigns")
    assert second.at - first.at >= 0.3


async def test_throttling_longer_than_the_policy_allows_fails_at_once(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta)
    meta.script_error(17, route="campaigns", regain_access_minutes=1)

    with pytest.raises(ConnectorRateLimitedError) as caught:
        await client(http, pointed, secret).campaigns()

    assert caught.value.retry_after == 60
    assert len(meta.requests_for("campaigns")) == 1


async def test_an_unreadable_answer_is_a_response_error(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    secret = tenant(meta)
    meta.script("insights", 200, {"data": [{"campaign_id": "1", "impressions": "many"}]})

    with pytest.raises(ConnectorResponseError):
        await client(http, pointed, secret).performance(**OCTOBER)


async def test_a_tenant_cannot_read_another_tenants_ad_account(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    mine, theirs = tenant(meta), tenant(meta)
    meta.add_campaign(theirs["ad_account_id"], "999", "Their secret campaign")
    pointed_at_theirs = {**mine, "ad_account_id": theirs["ad_account_id"]}

    with pytest.raises(ConnectorRequestError) as caught:
        await client(http, pointed, pointed_at_theirs).campaigns()

    assert "Their secret campaign" not in caught.value.message
    assert_no_secret(caught.value, mine)


async def test_a_tenant_cannot_change_another_tenants_campaign(
    http: httpx.AsyncClient, meta: FakeMetaGraph, pointed: Settings
) -> None:
    mine, theirs = tenant(meta), tenant(meta)
    meta.add_campaign(theirs["ad_account_id"], "999", "Theirs")

    with pytest.raises(ConnectorRequestError):
        await client(http, pointed, mine).set_status(campaign_id="999", status="PAUSED")

    assert meta.writes == []
