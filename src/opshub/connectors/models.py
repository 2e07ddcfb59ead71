"""The shapes every ad platform's data is normalised to, so an agent compares channels directly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel


class Channel(StrEnum):
    google_ads = "google_ads"
    meta_ads = "meta_ads"
    linkedin_ads = "linkedin_ads"


class PerformanceRow(BaseModel):
    """One campaign on one day."""

    date: date
    channel: Channel
    campaign_id: str
    campaign: str
    impressions: int
    clicks: int
    spend: Decimal
    conversions: float
    currency: str


class Campaign(BaseModel):
    channel: Channel
    id: str
    name: str
    status: str  # the platform's own word, upper case: ENABLED, ACTIVE, PAUSED, ...
    daily_budget: Decimal | None  # in major units of ``currency``
    currency: str | None
    budget_id: str | None = None  # Google Ads: the campaign budget's resource name
