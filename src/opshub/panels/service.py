"""The dashboard panels: per-crew run stats, usage and recent activity, read on the tenant's
connection (RLS) with one query per panel section.

A run's outcome, duration and cost are the crew's (recorded per task); an agent's figures are its
own, summed from the steps its runs stored (``agent.step``, ``tool.call``, ``llm.call`` with the
call's tokens and cost). "Today" and days are those of the zone asked for (``tz``, IANA).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opshub.actions import service as actions_service
from opshub.actions.models import ActionStatus
from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.crews.registry import CREWS
from opshub.db.cursor import decode_cursor, encode_cursor
from opshub.db.sql import Connection, Record, load_queries
from opshub.errors import InvalidInputError
from opshub.llm import usage as usage_ledger
from opshub.panels.schemas import (
    ActivityPanel,
    AgentRow,
    AgentsPanel,
    CrewDuration,
    CrewRow,
    DayCost,
    DayRuns,
    NextRun,
    PanelError,
    RecentTask,
    RunStats,
    TrendsPanel,
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
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
PREVIEW_CHARS = 200


def zone(name: str) -> ZoneInfo:
    """An IANA zone, or the API's 422 naming ``query.tz``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        message = f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)"
        raise InvalidInputError(
            message, details={"fields": [{"loc": "query.tz", "message": message}]}
        ) from exc


def midnight(tz: ZoneInfo, now: datetime | None = None) -> datetime:
    """Where today starts in ``tz``."""
    return datetime.combine((now or datetime.now(UTC)).astimezone(tz).date(), time(), tz)


async def agents(conn: Connection, *, tenant_id: uuid.UUID, tz: str = "UTC") -> AgentsPanel:
    """Every crew of the registry, then "router", then crews only the tasks still name."""
    since = midnight(zone(tz))
    stats = {
        row["crew"]: row
        for row in await QUERIES["crew_stats"].fetch(conn, tenant_id=tenant_id, since=since)
    }
    errors = {
        row["crew"]: row for row in await QUERIES["last_errors"].fetch(conn, tenant_id=tenant_id)
    }
    own = {
        (row["crew"], row["agent"]): row
        for row in await QUERIES["agent_stats"].fetch(conn, tenant_id=tenant_id, since=since)
    }
    names = [*CREWS, ROUTER]
    names += sorted((stats.keys() | errors.keys()) - set(names))
    crews = []
    for name in names:
        numbers = _run_stats(stats.get(name), errors.get(name)).model_dump()
        info = CREWS.get(name)
        agents_ = [
            _agent_row(agent.role, agent.goal, own.get((name, agent.role)))
            for agent in (info.agents if info else ())
        ]
        crews.append(CrewRow(crew=name, agents=agents_, **numbers))
    return AgentsPanel(tz=tz, since=since, crews=crews)


def _agent_row(role: str, goal: str, row: Record | None) -> AgentRow:
    return AgentRow(
        role=role,
        goal=goal,
        runs_today=row["runs_today"] if row else 0,
        steps=row["steps"] if row else 0,
        tool_calls=row["tool_calls"] if row else 0,
        model_calls=row["model_calls"] if row else 0,
        input_tokens=row["input_tokens"] if row else 0,
        output_tokens=row["output_tokens"] if row else 0,
        cost_usd=row["cost_usd"] if row else Decimal(0),
    )


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
    """The days asked for, both included; by default the last 30 days up to today."""
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
    tz: str = "UTC",
) -> UsagePanel:
    """Tokens and cost from the usage ledger, BYOK apart from platform-paid."""
    start, end = usage_window(start, end, today=datetime.now(zone(tz)).date())
    rows = {
        row["key"]: _usage_row(row)
        for row in await QUERIES["usage"].fetch(
            conn,
            tenant_id=tenant_id,
            first_day=start,
            last_day=end,
            group_by=group_by.value,
            tz=tz,
        )
    }
    if group_by is UsageGroup.day:
        days = (start + timedelta(days=n) for n in range((end - start).days + 1))
        keys = [day.isoformat() for day in days]
        items = [rows.get(key) or _usage_row(None, key=key) for key in keys]
    else:
        items = list(rows.values())
    return UsagePanel(
        from_=start, to=end, tz=tz, group_by=group_by, rows=items, total=_total(items)
    )


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


async def activity(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    settings: Settings,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    tz: str = "UTC",
    plan: str | None = None,
) -> ActivityPanel:
    """Recent tasks, changes waiting for approval, credential health and the next scheduled runs:
    at most ``limit`` of each list; ``cursor`` pages the recent tasks. Its times are instants
    (UTC); ``tz`` is checked and echoed so that every panel takes it alike. ``plan``: the
    tenant's, when the caller has it (which keys of the platform's it may use)."""
    zone(tz)
    after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
    tasks = await QUERIES["recent_tasks"].fetch(
        conn,
        tenant_id=tenant_id,
        preview_chars=PREVIEW_CHARS,
        limit=limit + 1,
        after_created_at=after_at,
        after_id=after_id,
    )
    pending, _ = await actions_service.list_actions(
        conn, tenant_id=tenant_id, status=ActionStatus.pending, limit=limit
    )
    credentials = await credentials_service.list_credentials(
        conn, tenant_id=tenant_id, settings=settings, plan=plan
    )
    runs = await QUERIES["next_runs"].fetch(
        conn, tenant_id=tenant_id, preview_chars=PREVIEW_CHARS, limit=limit
    )
    shown = tasks[:limit]
    more = len(tasks) > limit
    return ActivityPanel(
        tz=tz,
        recent_tasks=[_recent_task(row) for row in shown],
        next_cursor=encode_cursor(shown[-1]["created_at"], shown[-1]["id"]) if more else None,
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


async def trends(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    start: date | None,
    end: date | None,
    tz: str = "UTC",
) -> TrendsPanel:
    """Cost per day and crew (own keys apart from the platform's) against the month's budget,
    runs per day by outcome, and each crew's median work time, over the window."""
    start, end = usage_window(start, end, today=datetime.now(zone(tz)).date())
    window = {"tenant_id": tenant_id, "first_day": start, "last_day": end, "tz": tz}
    cost = await QUERIES["daily_cost"].fetch(conn, **window)
    runs = await QUERIES["daily_runs"].fetch(conn, **window)
    durations = await QUERIES["crew_durations"].fetch(conn, **window)
    return TrendsPanel(
        from_=start,
        to=end,
        tz=tz,
        days=[start + timedelta(days=n) for n in range((end - start).days + 1)],
        cost=[DayCost.model_validate(dict(row)) for row in cost],
        runs=[DayRuns.model_validate(dict(row)) for row in runs],
        durations=[
            CrewDuration(
                crew=row["crew"],
                runs=row["runs"],
                p50_duration_seconds=round(row["p50_duration_seconds"], 3),
            )
            for row in durations
        ],
        budget_usd=await usage_ledger.get_budget(conn, tenant_id=tenant_id),
        platform_spent_this_month_usd=await usage_ledger.platform_spend_this_month(
            conn, tenant_id=tenant_id
        ),
    )
