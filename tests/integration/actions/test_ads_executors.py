"""The ad action executors, each against its platform's wire-exact fake over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from opshub.actions.execution import ExecutionContext
from opshub.actions.executors.ads import change_budget, set_campaign_status
from opshub.actions.kinds import BudgetChange, CampaignStatus
from opshub.config import Settings
from opshub.connectors.models import Channel
from opshub.credentials.models import Provider, Source
from opshub.credentials.resolver import ResolvedCredential
from tests.fakes.google_ads import FakeGoogleAds
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.meta import FakeMetaGraph

CAMPAIGN = {Channel.google_ads: "11", Channel.meta_ads: "2381", Channel.linkedin_ads: "456"}


@dataclass(frozen=True)
class Fakes:
    google: FakeGoogleAds
    meta: FakeMetaGraph
    linkedin: FakeLinkedIn


@pytest.fixture(scope="module")
def servers() -> Iterator[Fakes]:
    with FakeGoogleAds() as google, FakeMetaGraph() as meta, FakeLinkedIn() as linkedin:
        yield Fakes(google, meta, linkedin)


@pytest.fixture
def fakes(servers: Fakes) -> Fakes:
    for fake in (servers.google, servers.meta, servers.linkedin):
        fake.reset()
    return servers


@pytest.fixture
def pointed(settings: Settings, fakes: Fakes) -> Settings:
    return settings.model_copy(
        update={
            "google_oauth_url": fakes.google.token_url,
            "google_ads_api_url": fakes.google.api_url,
            "meta_graph_url": fakes.meta.graph_url,
            "linkedin_api_url": fakes.linkedin.api_url,
        }
    )


def seeded_secret(channel: Channel, fakes: Fakes) -> dict[str, Any]:
    """A tenant's secret for ``channel`` and one EUR campaign (budget 10.00, running) in it."""
    unique = uuid.uuid4().hex
    account = str(uuid.uuid4().int)[:9]
    if channel is Channel.google_ads:
        secret = {
            "client_id": f"{unique}.apps.googleusercontent.com",
            "client_secret": f"GOCSPX-{unique}",
            "refresh_token": f"1//0g{unique}",
            "developer_token": f"devtok-{unique}",
            "login_customer_id": account,
        }
        fakes.google.add_client(secret["client_id"], secret["client_secret"])
        fakes.google.refresh_tokens.add(secret["refresh_token"])
        fakes.google.add_customer(account, refresh_tokens=[secret["refresh_token"]])
        fakes.google.add_campaign(account, "11", "Brand", daily_budget_micros=10_000_000)
        return secret
    if channel is Channel.meta_ads:
        secret = {"access_token": f"EAAB{unique}", "ad_account_id": f"act_{account}"}
        fakes.meta.add_token(secret["access_token"])
        fakes.meta.add_ad_account(account, tokens=[secret["access_token"]])
        fakes.meta.add_campaign(account, "2381", "Retargeting", daily_budget=1000)
        return secret
    secret = {"access_token": f"AQV{unique}", "ad_account_id": account}
    fakes.linkedin.add_account(int(account))
    fakes.linkedin.add_token(secret["access_token"], [int(account)])
    fakes.linkedin.add_campaign(int(account), 456, "Decision makers", daily_budget="10")
    return secret


def context(
    channel: Channel, secret: dict[str, Any], http: httpx.AsyncClient, settings: Settings
) -> ExecutionContext:
    credential = ResolvedCredential(Provider(channel.value), Source.byok, "fp-test", secret)
    return ExecutionContext(uuid.uuid4(), uuid.uuid4(), http, settings, credential)


def writes(channel: Channel, fakes: Fakes) -> list[Any]:
    if channel is Channel.google_ads:
        return [update for _, update in fakes.google.writes]
    if channel is Channel.meta_ads:
        return [changes for _, changes in fakes.meta.writes]
    return [changes for _, changes in fakes.linkedin.writes]


@pytest.mark.parametrize("channel", list(Channel))
async def test_a_budget_change_lands_in_the_account_once(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, channel: Channel
) -> None:
    secret = seeded_secret(channel, fakes)
    payload = BudgetChange(
        channel=channel,
        campaign_id=CAMPAIGN[channel],
        daily_budget=Decimal("25.50"),
        previous_daily_budget=Decimal(10),
        currency="EUR",
    )

    outcome = await change_budget(context(channel, secret, http, pointed), payload)

    assert (outcome["campaign_id"], outcome["daily_budget"], outcome["currency"]) == (
        CAMPAIGN[channel],
        "25.50",
        "EUR",
    )
    (change,) = writes(channel, fakes)
    assert (
        change
        == {
            Channel.google_ads: {
                "resourceName": f"customers/{secret.get('login_customer_id')}/campaignBudgets/1101",
                "amountMicros": "25500000",
            },
            Channel.meta_ads: {"daily_budget": "2550"},
            Channel.linkedin_ads: {"dailyBudget": {"amount": "25.50", "currencyCode": "EUR"}},
        }[channel]
    )


@pytest.mark.parametrize("channel", list(Channel))
async def test_pause_then_resume_land_once_each(
    http: httpx.AsyncClient, fakes: Fakes, pointed: Settings, channel: Channel
) -> None:
    secret = seeded_secret(channel, fakes)
    ctx = context(channel, secret, http, pointed)
    campaign_id = CAMPAIGN[channel]

    paused = await set_campaign_status(
        ctx, CampaignStatus(channel=channel, campaign_id=campaign_id, status="PAUSED")
    )
    resumed = await set_campaign_status(
        ctx, CampaignStatus(channel=channel, campaign_id=campaign_id, status="ACTIVE")
    )

    assert (paused, resumed) == (
        {"campaign_id": campaign_id, "status": "PAUSED"},
        {"campaign_id": campaign_id, "status": "ACTIVE"},
    )
    running = "ENABLED" if channel is Channel.google_ads else "ACTIVE"
    assert [w["status"] for w in writes(channel, fakes)] == ["PAUSED", running]
