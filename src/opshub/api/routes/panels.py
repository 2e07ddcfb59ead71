"""/v1/panels: what the dashboards show — crews and agents, usage, recent activity."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from opshub.api.deps import StateDep, ViewerDep
from opshub.panels import service as panels_service
from opshub.panels.schemas import ActivityPanel, AgentsPanel, UsageGroup, UsagePanel

router = APIRouter(prefix="/v1/panels", tags=["panels"])


@router.get("/agents", response_model=AgentsPanel)
async def agents_panel(ctx: ViewerDep) -> AgentsPanel:
    return await panels_service.agents(ctx.conn, tenant_id=ctx.principal.tenant_id)


@router.get("/usage", response_model=UsagePanel)
async def usage_panel(
    ctx: ViewerDep,
    from_: Annotated[
        date | None, Query(alias="from", description="First day (UTC); default: to - 29 days")
    ] = None,
    to: Annotated[
        date | None, Query(description="Last day (UTC), included; default: today")
    ] = None,
    group_by: UsageGroup = UsageGroup.day,
) -> UsagePanel:
    return await panels_service.usage(
        ctx.conn, tenant_id=ctx.principal.tenant_id, start=from_, end=to, group_by=group_by
    )


@router.get("/activity", response_model=ActivityPanel)
async def activity_panel(ctx: ViewerDep, state: StateDep) -> ActivityPanel:
    return await panels_service.activity(
        ctx.conn, tenant_id=ctx.principal.tenant_id, settings=state.settings
    )
