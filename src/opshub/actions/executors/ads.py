"""Executors for ad campaign actions: a daily budget and a campaign's status.

Both writes are absolute, so a run that repeats after a crash sets the same value again.
"""

from __future__ import annotations

from typing import Any

from opshub.actions.execution import ExecutionContext
from opshub.actions.kinds import BudgetChange, CampaignStatus
from opshub.connectors.ads import AdsClient, ads_client
from opshub.connectors.models import Channel


def _client(ctx: ExecutionContext, channel: Channel) -> AdsClient:
    return ads_client(channel, http=ctx.http, settings=ctx.settings, secret=ctx.secret)


async def change_budget(ctx: ExecutionContext, payload: BudgetChange) -> dict[str, Any]:
    return await _client(ctx, payload.channel).set_daily_budget(
        campaign_id=payload.campaign_id,
        budget_id=payload.budget_id,
        amount=payload.daily_budget,
        currency=payload.currency,
    )


async def set_campaign_status(ctx: ExecutionContext, payload: CampaignStatus) -> dict[str, Any]:
    return await _client(ctx, payload.channel).set_status(
        campaign_id=payload.campaign_id, status=payload.status
    )
