"""/v1/schedules: crews on a cron, in the tenant's time zone; each firing is a task."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from opshub.api.deps import MemberDep, ViewerDep
from opshub.schedules import service as schedules_service
from opshub.schedules.schemas import ScheduleCreate, ScheduleRead, ScheduleUpdate
from opshub.tasks.schemas import TaskPage

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])


@router.post("", response_model=ScheduleRead, status_code=201)
async def create_schedule(ctx: MemberDep, body: ScheduleCreate) -> ScheduleRead:
    return await schedules_service.create_schedule(
        ctx.conn, tenant_id=ctx.principal.tenant_id, body=body
    )


@router.get("", response_model=list[ScheduleRead])
async def list_schedules(ctx: ViewerDep) -> list[ScheduleRead]:
    return await schedules_service.list_schedules(ctx.conn, tenant_id=ctx.principal.tenant_id)


@router.get("/{schedule_id}", response_model=ScheduleRead)
async def get_schedule(ctx: ViewerDep, schedule_id: uuid.UUID) -> ScheduleRead:
    return await schedules_service.get_schedule(
        ctx.conn, tenant_id=ctx.principal.tenant_id, schedule_id=schedule_id
    )


@router.patch("/{schedule_id}", response_model=ScheduleRead)
async def update_schedule(
    ctx: MemberDep, schedule_id: uuid.UUID, body: ScheduleUpdate
) -> ScheduleRead:
    return await schedules_service.update_schedule(
        ctx.conn, tenant_id=ctx.principal.tenant_id, schedule_id=schedule_id, body=body
    )


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(ctx: MemberDep, schedule_id: uuid.UUID) -> Response:
    await schedules_service.delete_schedule(
        ctx.conn, tenant_id=ctx.principal.tenant_id, schedule_id=schedule_id
    )
    return Response(status_code=204)


@router.get("/{schedule_id}/runs", response_model=TaskPage)
async def list_runs(
    ctx: ViewerDep,
    schedule_id: uuid.UUID,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TaskPage:
    items, next_cursor = await schedules_service.list_runs(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        schedule_id=schedule_id,
        cursor=cursor,
        limit=limit,
    )
    return TaskPage(items=items, next_cursor=next_cursor)
