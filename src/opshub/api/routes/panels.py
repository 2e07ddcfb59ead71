"""/v1/panels: what the dashboards show — crews and agents, usage, recent activity."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from opshub.api.deps import StateDep, ViewerDep
from opshub.panels import service as panels_service
from opshub.panels.schemas import (
    ActivityPanel,
    AgentsPanel,
    TrendsPanel,
    UsageGroup,
    UsagePanel,
)

router = APIRouter(prefix="/v1/panels", tags=["panels"])

TzQuery = Annotated[
    str, Query(description="IANA time zone whose day 'today' and days are", examples=["UTC"])
]


@router.get("/agents", response_model=AgentsPanel)
async def agents_panel(ctx: ViewerDep, tz: TzQuery = "UTC") -> AgentsPanel:
    return await panels_service.agents(ctx.conn, tenant_id=ctx.principal.tenant_id, tz=tz)


@router.get("/usage", response_model=UsagePanel)
async def usage_panel(
    ctx: ViewerDep,
    from_: Annotated[
        date | None, Query(alias="from", description="First day; default: to - 29 days")
    ] = None,
    to: Annotated[date | None, Query(description="Last day, included; default: today")] = None,
    group_by: UsageGroup = UsageGroup.day,
    tz: TzQuery = "UTC",
) -> UsagePanel:
    return await panels_service.usage(
        ctx.conn, tenant_id=ctx.principal.tenant_id, start=from_, end=to, group_by=group_by, tz=tz
    )


@router.get("/trends", response_model=TrendsPanel)
async def trends_panel(
    ctx: ViewerDep,
    from_: Annotated[
        date | None, Query(alias="from", description="First day; default: to - 29 days")
    ] = None,
    to: Annotated[date | None, Query(description="Last day, included; default: today")] = None,
    tz: TzQuery = "UTC",
) -> TrendsPanel:
    return await panels_service.trends(
        ctx.conn, tenant_id=ctx.principal.tenant_id, start=from_, end=to, tz=tz
    )


@router.get("/activity", response_model=ActivityPanel)
async def activity_panel(
    ctx: ViewerDep,
    state: StateDep,
    limit: Annotated[
        int, Query(ge=1, le=panels_service.MAX_LIMIT, description="At most this many per list")
    ] = panels_service.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    tz: TzQuery = "UTC",
) -> ActivityPanel:
    return await panels_service.activity(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        settings=state.settings,
        limit=limit,
        cursor=cursor,
        tz=tz,
    )
