"""The dashboard panels: per-crew run stats, usage and recent activity, read on the tenant's
connection (RLS) with one query per panel section.

A crew's agents share their crew's numbers: a run is one task worked by the crew's agents
together, and its outcome, duration and cost are recorded per task, not per agent. The
``agent.step`` events name agents, but carry no outcome or cost, and reading them means scanning
every event of the day's tasks on each panel load.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from opshub.actions import service as actions_service
from opshub.actions.models import ActionStatus
from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.crews.registry import CREWS
from opshub.db.sql import Connection, Record, load_queries
from opshub.errors import InvalidInputError
from opshub.panels.schemas import (
    ActivityPanel,
    AgentRow,
    AgentsPanel,
    CrewRow,
    NextRun,
    PanelError,
    RecentTask,
    RunStats,
    UsageAmounts,
    UsageGroup,
    UsagePanel,
    UsageRow,
)
from opshub.tasks.models import TaskStatus
from opshub.tasks.schemas import TaskError

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
ROUTER = "router"  # tasks without a crew: questions the router answered itself
DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 366
RECENT_TASKS = 10
PENDING_APPROVALS = 20
NEXT_RUNS = 5
PREVIEW_CHARS = 200


def midnight_utc(now: datetime | None = None) -> datetime:
    return datetime.combine((now or datetime.now(UTC)).astimezone(UTC).date(), time(), UTC)


async def agents(conn: Connection, *, tenant_id: uuid.UUID) -> AgentsPanel:
    """Every crew of the registry, then "router", then crews only the tasks still name."""
    since = midnight_utc()
    stats = {
        row["crew"]: row
        for row in await QUERIES["crew_stats"].fetch(conn, tenant_id=tenant_id, since=since)
    }
    errors = {
        row["crew"]: row for row in await QUERIES["last_errors"].fetch(conn, tenant_id=tenant_id)
    }
    names = [*CREWS, ROUTER]
    names += sorted((stats.keys() | errors.keys()) - set(names))
    crews = []
    for name in names:
        numbers = _run_stats(stats.get(name), errors.get(name)).model_dump()
        info = CREWS.get(name)
        agents_ = [
            AgentRow(role=agent.role, goal=agent.goal, **numbers)
            for agent in (info.agents if info else ())
        ]
        crews.append(CrewRow(crew=name, agents=agents_, **numbers))
    return AgentsPanel(since=since, crews=crews)


def _run_stats(row: Record | None, error: Record | None) -> RunStats:
    succeeded = row["succeeded_today"] if row else 0
    failed = row["failed_today"] if row else 0
    ended = succeeded + failed
    p50 = row["p50_duration_seconds"] if row else None
    return RunStats(
        runs_today=row["runs_today"] if row else 0,
        succeeded_today=succeeded,
        failed_today=failed,
        success_rate=round(succeeded / ended, 4) if ended else None,
        p50_duration_seconds=round(p50, 3) if p50 is not None else None,
        input_tokens=row["input_tokens"] if row else 0,
        output_tokens=row["output_tokens"] if row else 0,
        cost_usd=row["cost_usd"] if row else Decimal(0),
        running_now=row["running_now"] if row else 0,
        last_error=_panel_error(error) if error else None,
    )


def _panel_error(row: Record) -> PanelError:
    body = row["error"] or {}
    return PanelError(
        task_id=row["task_id"],
        code=body.get("code", "error"),
        message=body.get("message", ""),
        at=row["finished_at"],
    )


def usage_window(start: date | None, end: date | None, *, today: date) -> tuple[date, date]:
    """The days asked for, both included; by default the last 30 days up to today (UTC)."""
    end = end or today
    start = start or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    if start > end:
        raise InvalidInputError(
            "from must not be after to",
            details={"fields": [{"loc": "query.from", "message": "after to"}]},
        )
    if (end - start).days + 1 > MAX_WINDOW_DAYS:
        message = f"the window may span at most {MAX_WINDOW_DAYS} days"
        raise InvalidInputError(
            message, details={"fields": [{"loc": "query.from", "message": message}]}
        )
    return start, end


async def usage(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    start: date | None,
    end: date | None,
    group_by: UsageGroup,
) -> UsagePanel:
    """Tokens and cost from the usage ledger, BYOK apart from platform-paid."""
    start, end = usage_window(start, end, today=datetime.now(UTC).date())
    rows = {
        row["key"]: _usage_row(row)
        for row in await QUERIES["usage"].fetch(
            conn, tenant_id=tenant_id, start=start, end=end, group_by=group_by.value
        )
    }
    if group_by is UsageGroup.day:
        days = (start + timedelta(days=n) for n in range((end - start).days + 1))
        keys = [day.isoformat() for day in days]
        items = [rows.get(key) or _usage_row(None, key=key) for key in keys]
    else:
        items = list(rows.values())
    return UsagePanel(from_=start, to=end, group_by=group_by, rows=items, total=_total(items))


def _amounts(row: Record | None, prefix: str) -> UsageAmounts:
    if row is None:
        return UsageAmounts(calls=0, input_tokens=0, output_tokens=0, cost_usd=Decimal(0))
    return UsageAmounts(
        calls=row[f"{prefix}_calls"],
        input_tokens=row[f"{prefix}_input_tokens"],
        output_tokens=row[f"{prefix}_output_tokens"],
        cost_usd=row[f"{prefix}_cost_usd"],
    )


def _usage_row(row: Record | None, *, key: str = "") -> UsageRow:
    platform = _amounts(row, "platform")
    fees = row["run_fees_usd"] if row else Decimal(0)
    return UsageRow(
        key=row["key"] if row else key,
        byok=_amounts(row, "byok"),
        platform=platform,
        run_fees_usd=fees,
        billable_usd=platform.cost_usd + fees,
    )


def _sum(parts: list[UsageAmounts]) -> UsageAmounts:
    return UsageAmounts(
        calls=sum(p.calls for p in parts),
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        cost_usd=sum((p.cost_usd for p in parts), Decimal(0)),
    )


def _total(rows: list[UsageRow]) -> UsageRow:
    return UsageRow(
        key="total",
        byok=_sum([row.byok for row in rows]),
        platform=_sum([row.platform for row in rows]),
        run_fees_usd=sum((row.run_fees_usd for row in rows), Decimal(0)),
        billable_usd=sum((row.billable_usd for row in rows), Decimal(0)),
    )


async def activity(conn: Connection, *, tenant_id: uuid.UUID, settings: Settings) -> ActivityPanel:
    """Recent tasks, changes waiting for approval, credential health and the next scheduled runs."""
    tasks = await QUERIES["recent_tasks"].fetch(
        conn, tenant_id=tenant_id, preview_chars=PREVIEW_CHARS, limit=RECENT_TASKS
    )
    pending, _ = await actions_service.list_actions(
        conn, tenant_id=tenant_id, status=ActionStatus.pending, limit=PENDING_APPROVALS
    )
    credentials = await credentials_service.list_credentials(
        conn, tenant_id=tenant_id, settings=settings
    )
    runs = await QUERIES["next_runs"].fetch(
        conn, tenant_id=tenant_id, preview_chars=PREVIEW_CHARS, limit=NEXT_RUNS
    )
    return ActivityPanel(
        recent_tasks=[_recent_task(row) for row in tasks],
        pending_approvals=pending,
        credentials=credentials,
        next_runs=[NextRun(**dict(row)) for row in runs],
    )


def _recent_task(row: Record) -> RecentTask:
    error = row["error"]
    return RecentTask(
        id=row["id"],
        crew=row["crew"],
        status=TaskStatus(row["status"]),
        input=row["input"],
        error=TaskError(**error) if error else None,
        cost_usd=row["cost_usd"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
