"""The ad tools against the fake Google Ads, Meta and LinkedIn: one normalised summary across
the channels a tenant connected, a clear word for the ones it did not, and periods checked."""

from __future__ import annotations

from typing import Any

from opshub.tools.ads import AdCampaignsTool, AdPerformanceTool
from opshub.tools.context import ToolContext
from tests.conftest import TenantHandle
from tests.integration.runtime.connected import Connected
from tests.integration.tools.conftest import Connect, ContextFor, data, use, use_directly

WEEK = {"start": "2026-11-16", "end": "2026-11-22"}


async def three_channels(tenant: TenantHandle, connect: Connect, platforms: Connected) -> int:
    """Google, Meta (USD) and LinkedIn (EUR) with last week's figures; returns LinkedIn's
    campaign id."""
    customer = await connect.google(tenant)
    platforms.google.add_campaign(customer, "9001", "Search Brand")
    for day, impressions, clicks, micros, conversions in (
        ("2026-11-17", 1000, 50, 123_450_000, 5),
        ("2026-11-18", 500, 25, 26_550_000, 1),
        ("2026-11-09", 9000, 900, 9_000_000_000, 0),  # the week before
    ):
        platforms.google.add_daily_stats(
            customer, "9001", day, impressions=impressions, clicks=clicks,
            cost_micros=micros, conversions=conversions,
        )  # fmt: skip
    account, _ = await connect.meta(tenant)
    platforms.meta.add_campaign(account, "7001", "Spring Sale", daily_budget=4000)
    platforms.meta.add_campaign(account, "7002", "Retargeting", daily_budget=1000)
    platforms.meta.add_daily_stats(
        account, "7001", "2026-11-18", impressions=800, clicks=40, spend="88.10",
        actions={"purchase": 3},
    )  # fmt: skip
    platforms.meta.add_daily_stats(
        account, "7002", "2026-11-19", impressions=200, clicks=0, spend="10.00"
    )
    li_account = await connect.linkedin(tenant, currency="EUR")
    li_campaign = li_account + 1  # campaign ids are global in LinkedIn's fake
    platforms.linkedin.add_campaign(li_account, li_campaign, "Decision makers")
    platforms.linkedin.add_daily_stats(
        li_campaign, "2026-11-19", impressions=300, clicks=9, cost="45.00", conversions=2
    )
    return li_campaign


def by_campaign(answer: str) -> dict[str, dict[str, Any]]:
    return {row["campaign"]: row for row in data(answer)["rows"]}


async def test_performance_across_channels_is_summed_per_campaign_with_its_ratios(
    tenant_a: TenantHandle, connect: Connect, platforms: Connected, context_for: ContextFor
) -> None:
    li_campaign = await three_channels(tenant_a, connect, platforms)

    answer = await use(AdPerformanceTool(context=context_for(tenant_a)), **WEEK)

    assert data(answer)["unavailable"] is None
    assert by_campaign(answer) == {
        # Two days in the period; the week before is not counted.
        "Search Brand": {
            "channel": "google_ads", "campaign_id": "9001", "campaign": "Search Brand",
            "currency": "USD", "impressions": 1500, "clicks": 75, "spend": "150.00",
            "conversions": 6.0, "ctr": 0.05, "cpc": "2.00", "cost_per_conversion": "25.00",
        },
        "Spring Sale": {
            "channel": "meta_ads", "campaign_id": "7001", "campaign": "Spring Sale",
            "currency": "USD", "impressions": 800, "clicks": 40, "spend": "88.10",
            "conversions": 3.0, "ctr": 0.05, "cpc": "2.20", "cost_per_conversion": "29.37",
        },
        "Retargeting": {
            "channel": "meta_ads", "campaign_id": "7002", "campaign": "Retargeting",
            "currency": "USD", "impressions": 200, "clicks": 0, "spend": "10.00",
            "conversions": 0.0, "ctr": 0.0, "cpc": None, "cost_per_conversion": None,
        },
        "Decision makers": {
            "channel": "linkedin_ads", "campaign_id": str(li_campaign),
            "campaign": "Decision makers", "currency": "EUR", "impressions": 300, "clicks": 9,
            "spend": "45.00", "conversions": 2.0, "ctr": 0.03, "cpc": "5.00",
            "cost_per_conversion": "22.50",
        },
    }  # fmt: skip


async def test_performance_per_channel_adds_up_that_channels_campaigns(
    tenant_a: TenantHandle, connect: Connect, platforms: Connected, context_for: ContextFor
) -> None:
    await three_channels(tenant_a, connect, platforms)
    tool = AdPerformanceTool(context=context_for(tenant_a))

    answer = await use(tool, **WEEK, group_by="channel")
    # A channel named twice is still read (and counted) once.
    twice = await use(tool, **WEEK, channels=["meta_ads", "meta_ads"], group_by="channel")

    meta = {
        "channel": "meta_ads", "currency": "USD", "impressions": 1000, "clicks": 40,
        "spend": "98.10", "conversions": 3.0, "ctr": 0.04, "cpc": "2.45",
        "cost_per_conversion": "32.70",
    }  # fmt: skip
    rows = {row["channel"]: row for row in data(answer)["rows"]}
    assert rows["meta_ads"] == meta
    assert (rows["google_ads"]["spend"], rows["linkedin_ads"]["spend"]) == ("150.00", "45.00")
    assert data(twice)["rows"] == [meta]


async def test_a_channel_that_is_not_connected_is_named_and_the_others_still_answer(
    tenant_a: TenantHandle, connect: Connect, platforms: Connected, context_for: ContextFor
) -> None:
    account, _ = await connect.meta(tenant_a)
    platforms.meta.add_campaign(account, "7001", "Spring Sale")
    platforms.meta.add_daily_stats(
        account, "7001", "2026-11-18", impressions=800, clicks=40, spend="88.10"
    )

    answer = data(await use(AdPerformanceTool(context=context_for(tenant_a)), **WEEK))

    assert [(row["channel"], row["spend"]) for row in answer["rows"]] == [("meta_ads", "88.10")]
    assert answer["unavailable"] == {
        "google_ads": "Google Ads is not connected for this business: ask the user to add the "
        "google_ads credential (PUT /v1/credentials/google_ads).",
        "linkedin_ads": "LinkedIn Ads is not connected for this business: ask the user to add "
        "the linkedin_ads credential (PUT /v1/credentials/linkedin_ads).",
    }


async def ask(context: ToolContext, **period: str) -> tuple[str, str]:
    """The answer as CrewAI gets it (``run``: its args_schema first) and as ``_run`` gives it."""
    tool = AdPerformanceTool(context=context)
    return await use(tool, **period), await use_directly(tool, **period)


async def test_a_period_ending_before_it_starts_is_refused_with_a_sentence(
    tenant_a: TenantHandle, connect: Connect, context_for: ContextFor, platforms: Connected
) -> None:
    await connect.meta(tenant_a)
    before = len(platforms.meta.requests)

    answers = await ask(context_for(tenant_a), start="2026-11-22", end="2026-11-16")

    assert set(answers) == {
        "The period is not valid: it ends (2026-11-16) before it starts (2026-11-22); give the "
        "first day as start and the last day as end."
    }
    assert len(platforms.meta.requests) == before  # no platform was asked


async def test_a_period_over_a_year_is_refused_and_a_whole_year_is_not(
    tenant_a: TenantHandle, connect: Connect, context_for: ContextFor
) -> None:
    await connect.meta(tenant_a)
    context = context_for(tenant_a)

    too_long = await ask(context, start="2025-01-01", end="2026-01-02")
    leap_year = await use(AdPerformanceTool(context=context), start="2024-01-01", end="2024-12-31")

    assert set(too_long) == {
        "The period is not valid: 367 days is more than a year; ask for at most 366 days at a time."
    }
    assert data(leap_year)["period"] == {"start": "2024-01-01", "end": "2024-12-31"}


async def test_arguments_the_schema_refuses_are_answered_in_a_sentence_not_a_schema_dump(
    tenant_a: TenantHandle, context_for: ContextFor
) -> None:
    answers = await ask(context_for(tenant_a), start="last monday", end="2026-11-22")

    assert set(answers) == {
        "The request is not valid: start: Input should be a valid date or datetime, invalid "
        "character in year."
    }


async def test_campaigns_come_with_their_budget_in_the_accounts_currency(
    tenant_a: TenantHandle, connect: Connect, platforms: Connected, context_for: ContextFor
) -> None:
    account, _ = await connect.meta(tenant_a, currency="EUR")
    platforms.meta.add_campaign(account, "7001", "Spring Sale", daily_budget=4000)

    answer = await use(AdCampaignsTool(context=context_for(tenant_a)), channel="meta_ads")

    assert data(answer) == [
        {"channel": "meta_ads", "id": "7001", "name": "Spring Sale", "status": "ACTIVE",
         "daily_budget": "40", "currency": "EUR"}
    ]  # fmt: skip


async def test_a_tenants_ad_tools_read_only_its_own_ad_account(
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    connect: Connect,
    platforms: Connected,
    context_for: ContextFor,
) -> None:
    account_a, token_a = await connect.meta(tenant_a)
    account_b, _ = await connect.meta(tenant_b)
    platforms.meta.add_campaign(account_a, "7301", "A's campaign")
    platforms.meta.add_campaign(account_b, "7302", "B's campaign")
    for account, campaign, spend in ((account_a, "7301", "12.00"), (account_b, "7302", "999.99")):
        platforms.meta.add_daily_stats(
            account, campaign, "2026-11-18", impressions=100, clicks=10, spend=spend
        )
    before = len(platforms.meta.requests)
    context = context_for(tenant_a)

    performance = await use(AdPerformanceTool(context=context), **WEEK, channels=["meta_ads"])
    campaigns = await use(AdCampaignsTool(context=context), channel="meta_ads")

    assert [row["spend"] for row in data(performance)["rows"]] == ["12.00"]
    assert [c["name"] for c in data(campaigns)] == ["A's campaign"]
    reads = platforms.meta.requests[before:]
    assert {r.params["access_token"] for r in reads} == {token_a}
    assert all(f"act_{account_a}" in r.path for r in reads)
    assert "999.99" not in performance and "B's campaign" not in campaigns
