"""Read ad performance and campaigns on Google Ads, Meta and LinkedIn, in one normalised shape."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from opshub.connectors.ads import AdsClient, ads_client
from opshub.connectors.models import Campaign, Channel, PerformanceRow
from opshub.credentials.models import Provider
from opshub.tools.connector import ConnectorTool, ToolFailure
from opshub.tools.output import for_the_model

MAX_DAYS = 366  # a year, leap day included


class AdsTool(ConnectorTool):
    def performance(self, channel: Channel, start: date, end: date) -> list[PerformanceRow]:
        async def read(secret: dict[str, Any]) -> list[PerformanceRow]:
            client = self._client(channel, secret)
            return await client.performance(start=start, end=end)

        return self.call(Provider(channel.value), read)

    def campaigns(self, channel: Channel) -> list[Campaign]:
        async def read(secret: dict[str, Any]) -> list[Campaign]:
            return await self._client(channel, secret).campaigns()

        return self.call(Provider(channel.value), read)

    def _client(self, channel: Channel, secret: dict[str, Any]) -> AdsClient:
        c = self.connectors
        return ads_client(channel, http=c.http, settings=c.settings, secret=secret)


class AdPerformanceArgs(BaseModel):
    start: date = Field(description="First day, YYYY-MM-DD.")
    end: date = Field(description="Last day, YYYY-MM-DD (inclusive).")
    channels: list[Channel] | None = Field(
        default=None, description="Which platforms; all three when omitted."
    )
    group_by: Literal["campaign", "day", "channel"] = Field(
        default="campaign", description="One row per campaign, per day and channel, or per channel."
    )


def check_period(start: date, end: date) -> None:
    """In order and at most a year: checked here rather than in the args_schema, so that the
    refusal tells the agent what to ask for instead."""
    if end < start:
        raise ToolFailure(
            f"The period is not valid: it ends ({end}) before it starts ({start}); "
            "give the first day as start and the last day as end."
        )
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ToolFailure(
            f"The period is not valid: {days} days is more than a year; ask for at most "
            f"{MAX_DAYS} days at a time."
        )


def summarise(rows: list[PerformanceRow], group_by: str) -> list[dict[str, Any]]:
    """Totals per group, with the ratios an analyst asks for first."""
    groups: dict[tuple[str, ...], dict[str, Any]] = defaultdict(
        lambda: {"impressions": 0, "clicks": 0, "spend": Decimal(0), "conversions": 0.0}
    )
    for row in rows:
        if group_by == "campaign":
            key: tuple[str, ...] = (row.channel, row.campaign_id, row.campaign, row.currency)
        elif group_by == "day":
            key = (row.channel, row.date.isoformat(), row.currency)
        else:
            key = (row.channel, row.currency)
        total = groups[key]
        total["impressions"] += row.impressions
        total["clicks"] += row.clicks
        total["spend"] += row.spend
        total["conversions"] += row.conversions
    names: dict[str, tuple[str, ...]] = {
        "campaign": ("channel", "campaign_id", "campaign", "currency"),
        "day": ("channel", "date", "currency"),
        "channel": ("channel", "currency"),
    }
    summary = []
    for key, total in groups.items():
        clicks, spend, conversions = total["clicks"], total["spend"], total["conversions"]
        summary.append(
            {
                **dict(zip(names[group_by], key, strict=True)),
                **total,
                "spend": str(spend.quantize(Decimal("0.01"))),
                "conversions": round(conversions, 2),
                "ctr": round(clicks / total["impressions"], 4) if total["impressions"] else None,
                "cpc": str((spend / clicks).quantize(Decimal("0.01"))) if clicks else None,
                "cost_per_conversion": str(
                    (spend / Decimal(str(conversions))).quantize(Decimal("0.01"))
                )
                if conversions
                else None,
            }
        )
    return summary


class AdPerformanceTool(AdsTool):
    name: str = "ad_performance"
    description: str = (
        "Reads ad results for a period from Google Ads, Meta and LinkedIn in one shape: "
        "impressions, clicks, spend (in the account's currency), conversions, CTR, CPC and cost "
        "per conversion, grouped by campaign, day or channel. A platform that is not connected "
        "is named in `unavailable`."
    )
    args_schema: type[BaseModel] = AdPerformanceArgs

    def answer(self, **args: Any) -> str:
        a = AdPerformanceArgs(**args)
        check_period(a.start, a.end)
        rows: list[PerformanceRow] = []
        unavailable: dict[str, str] = {}
        for channel in dict.fromkeys(a.channels or Channel):  # a channel named twice counts once
            try:
                rows.extend(self.performance(channel, a.start, a.end))
            except ToolFailure as failure:
                unavailable[channel.value] = failure.message
        result = {
            "period": {"start": a.start.isoformat(), "end": a.end.isoformat()},
            "rows": summarise(rows, a.group_by),
            "unavailable": unavailable or None,
        }
        return for_the_model(result, hint="group by channel or shorten the period")


class AdCampaignsArgs(BaseModel):
    channel: Channel = Field(description="The ad platform.")


class AdCampaignsTool(AdsTool):
    name: str = "ad_campaigns"
    description: str = (
        "Lists a platform's campaigns with their id, status and daily budget: the ids the "
        "budget-change and pause/resume proposals need."
    )
    args_schema: type[BaseModel] = AdCampaignsArgs

    def answer(self, **args: Any) -> str:
        a = AdCampaignsArgs(**args)
        return for_the_model(self.campaigns(a.channel), hint="too many campaigns to show")
