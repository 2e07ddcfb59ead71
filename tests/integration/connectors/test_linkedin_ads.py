"""LinkedInAdsClient against the wire-exact fake (tests/fakes/linkedin.py), over real HTTP."""

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
from opshub.connectors.http import RetryPolicy
from opshub.connectors.linkedin_ads import LinkedInAdsClient
from opshub.connectors.models import Campaign, Channel, PerformanceRow
from tests.fakes.linkedin import FakeLinkedIn
from tests.integration.connectors.shared import FAST, OCTOBER


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as fake:
        yield fake


@pytest.fixture
def linkedin(server: FakeLinkedIn) -> FakeLinkedIn:
    server.reset()
    return server


@pytest.fixture
def pointed(settings: Settings, linkedin: FakeLinkedIn) -> Settings:
    return settings.model_copy(update={"linkedin_api_url": linkedin.api_url})


def tenant(linkedin: FakeLinkedIn, *, currency: str = "EUR") -> dict[str, Any]:
    """A tenant's stored secret and its own ad account in the fake."""
    account = int(str(uuid.uuid4().int)[:9])
    secret = {"access_token": f"AQV{uuid.uuid4().hex}", "ad_account_id": str(account)}
    linkedin.add_account(account, currency=currency)
    linkedin.add_token(secret["access_token"], [account])
    return secret


def client(
    http: httpx.AsyncClient, settings: Settings, secret: dict[str, Any], policy: RetryPolicy = FAST
) -> LinkedInAdsClient:
    return LinkedInAdsClient(http=http, settings=settings, secret=secret, policy=policy)


def assert_no_secret(error: ConnectorError, secret: dict[str, Any]) -> None:
    for value in secret.values():
        assert value not in error.message


async def test_performance_is_daily_rows_named_after_their_campaigns(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    secret = tenant(linkedin, currency="GBP")
    account = int(secret["ad_account_id"])
    linkedin.add_campaign(account, 456, "Decision makers")
    linkedin.add_campaign(account, 457, "Finished in October", status="COMPLETED")
    linkedin.add_daily_stats(
        456, "2026-10-01", impressions=12500, clicks=185, cost="2312.50", conversions=3
    )
    linkedin.add_daily_stats(457, "2026-10-02", impressions=10, clicks=1, cost="1.10")
    linkedin.add_daily_stats(456, "2026-11-01", impressions=1, clicks=1, cost="1")

    rows = await client(http, pointed, secret).performance(**OCTOBER)

    common = {"channel": Channel.linkedin_ads, "currency": "GBP"}
    assert rows == [
        PerformanceRow(
            **common,
            date=date(2026, 10, 1),
            campaign_id="456",
            campaign="Decision makers",
            impressions=12500,
            clicks=185,
            spend=Decimal("2312.50"),
            conversions=3,
        ),
        PerformanceRow(
            **common,
            date=date(2026, 10, 2),
            campaign_id="457",
            campaign="Finished in October",
            impressions=10,
            clicks=1,
            spend=Decimal("1.10"),
            conversions=0,
        ),
    ]
    (call,) = linkedin.requests_for("ad_analytics")
    assert "dateRange=(start:(year:2026,month:10,day:1),end:(year:2026,month:10,day:31))" in (
        call.query
    )
    assert f"accounts=List(urn%3Ali%3AsponsoredAccount%3A{account})" in call.query
    assert call.headers["linkedin-version"] == pointed.linkedin_version


async def test_the_fake_reads_rest_li_with_encoded_commas_and_any_key_order(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    # What makes the encoding assertions above mean something: the fake parses the structure.
    secret = tenant(linkedin)
    linkedin.add_campaign(int(secret["ad_account_id"]), 456, "Decision makers")
    linkedin.add_daily_stats(456, "2026-10-01", impressions=7, clicks=1, cost="1")
    query = (
        "q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY"
        "&dateRange=(end:(day:31%2Cmonth:10%2Cyear:2026)%2Cstart:(year:2026%2Cmonth:10%2Cday:1))"
        f"&accounts=List(urn%3Ali%3AsponsoredAccount%3A{secret['ad_account_id']})"
        "&fields=impressions%2CpivotValues"
    )
    headers = {
        "Authorization": f"Bearer {secret['access_token']}",
        "X-Restli-Protocol-Version": "2.0.0",
    }

    without_version = await http.get(f"{linkedin.api_url}/adAnalytics?{query}", headers=headers)
    headers["LinkedIn-Version"] = pointed.linkedin_version
    answer = await http.get(f"{linkedin.api_url}/adAnalytics?{query}", headers=headers)

    assert without_version.json()["code"] == "VERSION_MISSING"
    assert answer.json()["elements"] == [
        {"impressions": 7, "pivotValues": ["urn:li:sponsoredCampaign:456"]}
    ]


async def test_campaigns_are_read_page_by_page_with_their_budgets(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    linkedin.page_size = 2
    secret = tenant(linkedin)
    for n in range(5):
        linkedin.add_campaign(int(secret["ad_account_id"]), 500 + n, f"C{n}", daily_budget="12.5")
    linkedin.add_campaign(int(secret["ad_account_id"]), 600, "Archived", status="ARCHIVED")

    campaigns = await client(http, pointed, secret).campaigns()

    assert [c.id for c in campaigns] == ["500", "501", "502", "503", "504"]
    assert campaigns[0] == Campaign(
        channel=Channel.linkedin_ads,
        id="500",
        name="C0",
        status="ACTIVE",
        daily_budget=Decimal("12.5"),
        currency="EUR",
    )
    calls = linkedin.requests_for("ad_campaigns")
    assert len(calls) == 3
    assert "pageToken" not in calls[0].params and all("pageToken" in c.params for c in calls[1:])


async def test_a_budget_change_and_a_pause_land_once_each(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    secret = tenant(linkedin)
    linkedin.add_campaign(int(secret["ad_account_id"]), 456, "Decision makers")
    ads = client(http, pointed, secret)

    await ads.set_daily_budget(
        campaign_id="456", budget_id=None, amount=Decimal("150.00"), currency="EUR"
    )
    await ads.set_status(campaign_id="456", status="PAUSED")

    (campaign,) = [c for c in await ads.campaigns() if c.id == "456"]
    assert (campaign.daily_budget, campaign.status) == (Decimal(150), "PAUSED")
    assert linkedin.writes == [
        (456, {"dailyBudget": {"amount": "150.00", "currencyCode": "EUR"}}),
        (456, {"status": "PAUSED"}),
    ]
    updates = linkedin.requests_for("update_campaign")
    assert [u.headers["x-restli-method"] for u in updates] == ["PARTIAL_UPDATE"] * 2


async def test_an_expired_token_is_an_auth_error_without_the_token(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    secret = tenant(linkedin)
    linkedin.expired_tokens.add(secret["access_token"])

    with pytest.raises(ConnectorAuthError) as caught:
        await client(http, pointed, secret).campaigns()

    assert "EXPIRED_ACCESS_TOKEN" in caught.value.message
    assert_no_secret(caught.value, secret)


async def test_a_sunset_api_version_names_the_setting_to_change(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    secret = tenant(linkedin)
    sunset = pointed.model_copy(update={"linkedin_version": "202409"})  # answers 426

    with pytest.raises(ConnectorRequestError, match="linkedin_version"):
        await client(http, sunset, secret).campaigns()


async def test_a_throttle_with_retry_after_is_waited_out_then_succeeds(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    secret = tenant(linkedin)
    linkedin.add_campaign(int(secret["ad_account_id"]), 456, "Decision makers")
    throttled = {"status": 429, "serviceErrorCode": 101, "message": "Throttled"}
    linkedin.script("ad_campaigns", 429, throttled, headers={"Retry-After": "0.3"})

    campaigns = await client(http, pointed, secret).campaigns()

    assert [c.id for c in campaigns] == ["456"]
    first, second = linkedin.requests_for("ad_campaigns")
    assert second.at - first.at >= 0.3


async def test_a_throttle_longer_than_the_policy_allows_fails_at_once(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    secret = tenant(linkedin)
    linkedin.script("ad_campaigns", 429, {"status": 429}, headers={"Retry-After": "3600"})

    with pytest.raises(ConnectorRateLimitedError) as caught:
        await client(http, pointed, secret).campaigns()

    assert caught.value.retry_after == 3600
    assert len(linkedin.requests_for("ad_campaigns")) == 1


async def test_an_unreadable_answer_is_a_response_error(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    secret = tenant(linkedin)
    linkedin.script("ad_campaigns", 200, {"elements": [{"name": "no id"}]})

    with pytest.raises(ConnectorResponseError):
        await client(http, pointed, secret).campaigns()


async def test_a_tenant_cannot_reach_another_tenants_ad_account(
    http: httpx.AsyncClient, linkedin: FakeLinkedIn, pointed: Settings
) -> None:
    mine, theirs = tenant(linkedin), tenant(linkedin)
    linkedin.add_campaign(int(theirs["ad_account_id"]), 999, "Their secret campaign")
    linkedin.add_daily_stats(999, "2026-10-01", impressions=1, clicks=1, cost="1")
    pointed_at_theirs = {**mine, "ad_account_id": theirs["ad_account_id"]}
    ads = client(http, pointed, pointed_at_theirs)

    with pytest.raises(ConnectorRequestError) as read:
        await ads.performance(**OCTOBER)
    with pytest.raises(ConnectorRequestError):
        await ads.set_status(campaign_id="999", status="PAUSED")

    assert "Their secret campaign" not in read.value.message
    assert linkedin.writes == []
