"""Schedules: a crew and an input on a cron, in the tenant's time zone; each firing is a task."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import structlog

from opshub.crews.registry import CREWS
from opshub.db.sql import Connection, Record, load_queries
from opshub.errors import DomainError, NotFoundError
from opshub.outbox import service as outbox
from opshub.schedules.cron import next_fire, parse_zone, validate_cron
from opshub.schedules.schemas import ScheduleCreate, ScheduleRead, ScheduleUpdate
from opshub.tasks import service as tasks_service
from opshub.tasks.errors import UnknownCrewError
from opshub.tasks.schemas import TaskCreate, TaskRead

log = structlog.get_logger(__name__)
QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def _read(row: Record) -> ScheduleRead:
    return ScheduleRead(
        **{**dict(row), "next_run_at": row["next_run_at"] if row["enabled"] else None}
    )


def _check_crew(crew: str | None) -> None:
    if crew is not None and crew not in CREWS:
        raise UnknownCrewError(f"there is no crew {crew!r}", details={"crews": sorted(CREWS)})


async def create_schedule(
    conn: Connection, *, tenant_id: uuid.UUID, body: ScheduleCreate
) -> ScheduleRead:
    _check_crew(body.crew)
    cron = validate_cron(body.cron)
    next_run = next_fire(cron, parse_zone(body.timezone), datetime.now(UTC))
    row = await QUERIES["insert_schedule"].fetchrow(
        conn,
        tenant_id=tenant_id,
        crew=body.crew,
        input=body.input,
        inputs=body.inputs,
        cron=cron,
        timezone=body.timezone,
        enabled=body.enabled,
        next_run_at=next_run,
    )
    return _read(row)


async def get_schedule(
    conn: Connection, *, tenant_id: uuid.UUID, schedule_id: uuid.UUID
) -> ScheduleRead:
    row = await QUERIES["get_schedule"].fetchrow(conn, tenant_id=tenant_id, schedule_id=schedule_id)
    if row is None:
        raise NotFoundError("schedule not found")
    return _read(row)


async def list_schedules(conn: Connection, *, tenant_id: uuid.UUID) -> list[ScheduleRead]:
    return [_read(row) for row in await QUERIES["list_schedules"].fetch(conn, tenant_id=tenant_id)]


async def update_schedule(
    conn: Connection, *, tenant_id: uuid.UUID, schedule_id: uuid.UUID, body: ScheduleUpdate
) -> ScheduleRead:
    current = await QUERIES["get_schedule_for_update"].fetchrow(
        conn, tenant_id=tenant_id, schedule_id=schedule_id
    )
    if current is None:
        raise NotFoundError("schedule not found")
    changes = body.model_dump(exclude_unset=True)
    merged = {**dict(current), **{k: v for k, v in changes.items() if v is not None or k == "crew"}}
    _check_crew(merged["crew"])
    cron = validate_cron(merged["cron"])
    zone = parse_zone(merged["timezone"])
    timing_changed = {"cron", "timezone", "enabled"} & changes.keys()
    next_run = (
        next_fire(cron, zone, datetime.now(UTC)) if timing_changed else current["next_run_at"]
    )
    row = await QUERIES["update_schedule"].fetchrow(
        conn,
        tenant_id=tenant_id,
        schedule_id=schedule_id,
        crew=merged["crew"],
        input=merged["input"],
        inputs=merged["inputs"],
        cron=cron,
        timezone=merged["timezone"],
        enabled=merged["enabled"],
        next_run_at=next_run,
    )
    return _read(row)


async def delete_schedule(
    conn: Connection, *, tenant_id: uuid.UUID, schedule_id: uuid.UUID
) -> None:
    if (
        await QUERIES["delete_schedule"].fetchval(
            conn, tenant_id=tenant_id, schedule_id=schedule_id
        )
        is None
    ):
        raise NotFoundError("schedule not found")


async def list_runs(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    schedule_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> tuple[list[TaskRead], str | None]:
    await get_schedule(conn, tenant_id=tenant_id, schedule_id=schedule_id)
    return await tasks_service.list_tasks(
        conn, tenant_id=tenant_id, schedule_id=schedule_id, cursor=cursor, limit=limit
    )


async def fire_due(conn: Connection, *, limit: int = 100) -> list[TaskRead]:
    """Fire every due schedule once, in the caller's transaction (the scheduler runs as owner).

    The next firing is computed from now, not from the missed slot: a scheduler that was down
    over several slots fires once when it returns. A schedule that can no longer fire (its crew
    was retired) is disabled rather than holding up every other schedule.
    """
    fired = []
    now = datetime.now(UTC)
    for row in await QUERIES["due_schedules"].fetch(conn, limit=limit):
        try:
            async with conn.transaction():  # a savepoint: one bad schedule stops only itself
                fired.append(await _fire(conn, row, now))
        except DomainError as exc:
            log.warning(
                "schedule disabled: it cannot fire", schedule=str(row["id"]), reason=exc.message
            )
            await QUERIES["disable_schedule"].execute(conn, schedule_id=row["id"])
    return fired


async def _fire(conn: Connection, row: Record, now: datetime) -> TaskRead:
    _check_crew(row["crew"])
    task, _ = await tasks_service.submit_task(
        conn,
        tenant_id=row["tenant_id"],
        body=TaskCreate.model_construct(
            crew=row["crew"],
            input=row["input"],
            inputs=row["inputs"],
            thread_id=None,
            priority=0,
            idempotency_key=f"schedule:{row['id']}:{row['next_run_at'].isoformat()}",
            webhook_url=None,
        ),
        schedule_id=row["id"],
    )
    next_run = next_fire(row["cron"], parse_zone(row["timezone"]), now)
    await QUERIES["mark_fired"].execute(conn, schedule_id=row["id"], next_run_at=next_run)
    await outbox.emit(
        conn,
        tenant_id=row["tenant_id"],
        event_type="schedule.fired",
        data={
            "schedule_id": str(row["id"]),
            "task_id": str(task.id),
            "crew": row["crew"],
            "next_run_at": next_run.isoformat(),
        },
    )
    return task
