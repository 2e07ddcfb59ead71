"""One interface over the ad platforms, so tools and executors never branch on the channel."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal, Protocol

import httpx

from opshub.config import Settings
from opshub.connectors.google_ads import GoogleAdsClient
from opshub.connectors.linkedin_ads import LinkedInAdsClient
from opshub.connectors.meta_ads import MetaAdsClient
from opshub.connectors.models import Campaign, Channel, PerformanceRow


class AdsClient(Protocol):
    async def performance(self, *, start: date, end: date) -> list[PerformanceRow]:
        """Daily rows per campaign from ``start`` to ``end``, both included."""
        ...

    async def campaigns(self) -> list[Campaign]: ...

    async def set_daily_budget(
        self, *, campaign_id: str, budget_id: str | None, amount: Decimal, currency: str
    ) -> dict[str, Any]:
        """Set (not add to) the daily budget; ``currency`` must be the account's."""
        ...

    async def set_status(
        self, *, campaign_id: str, status: Literal["PAUSED", "ACTIVE"]
    ) -> dict[str, Any]: ...


CLIENTS: dict[Channel, type[GoogleAdsClient | MetaAdsClient | LinkedInAdsClient]] = {
    Channel.google_ads: GoogleAdsClient,
    Channel.meta_ads: MetaAdsClient,
    Channel.linkedin_ads: LinkedInAdsClient,
}


def ads_client(
    channel: Channel, *, http: httpx.AsyncClient, settings: Settings, secret: dict[str, Any]
) -> AdsClient:
    """The client for ``channel``, on the tenant's ``secret`` (the provider's stored shape)."""
    return CLIENTS[channel](http=http, settings=settings, secret=secret)
