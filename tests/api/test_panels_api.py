"""/v1/panels: the dashboard's numbers, read back as a dashboard user would read them.

Rows are seeded straight into the database (owner connection) for two tenants: tasks of several
crews and statuses with start and end times and errors, the usage ledger (BYOK and platform,
several days and providers), the steps runs store (agents' model calls), actions, credentials and
schedules. "Today" is since midnight UTC unless a test asks for another zone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from httpx import AsyncClient

from opshub.auth.models import Role
from opshub.crews.registry import CREWS
from opshub.db.engine import transaction
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle

MIDNIGHT = datetime.combine(datetime.now(UTC).date(), time(), UTC)


def at(hours: float = 0, seconds: float = 0) -> datetime:
    """A moment relative to midnight UTC today."""
    return MIDNIGHT + timedelta(hours=hours, seconds=seconds)


def usd(value: Any) -> Decimal:
    return Decimal(str(value))


async def add_task(
    conn: asyncpg.Connection,
    tenant: TenantHandle,
    crew: str | None,
    status: str,
    *,
    started: datetime | None = None,
    seconds: float | None = None,
    tokens: tuple[int, int] = (0, 0),
    cost: str = "0",
    error: str | None = None,
    created: datetime | None = None,
    input: str = "Do the work",
) -> uuid.UUID:
    finished = started + timedelta(seconds=seconds) if started and seconds is not None else None
    task_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO tasks (tenant_id, crew, input, status, created_at, started_at, finished_at,"
        " input_tokens, output_tokens, cost_usd, error)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        tenant.id,
        crew,
        input,
        status,
        created or started or datetime.now(UTC),
        started,
        finished,
        tokens[0],
        tokens[1],
        Decimal(cost),
        {"code": "run_failed", "message": error} if error else None,
    )
    return task_id


async def add_usage(
    conn: asyncpg.Connection,
    tenant: TenantHandle,
    when: str | datetime,
    provider: str,
    billed_to: str,
    tokens: tuple[int, int],
    cost: str,
    task_id: uuid.UUID | None,
    kind: str = "model_call",
) -> None:
    created = datetime.fromisoformat(when).replace(tzinfo=UTC) if isinstance(when, str) else when
    await conn.execute(
        "INSERT INTO usage_records (tenant_id, created_at, task_id, provider, model,"
        " input_tokens, output_tokens, cost_usd, billed_to, kind)"
        " VALUES ($1, $2, $3, $4, 'some-model', $5, $6, $7, $8, $9)",
        tenant.id,
        created,
        task_id,
        provider,
        tokens[0],
        tokens[1],
        Decimal(cost),
        billed_to,
        kind,
    )


async def add_event(
    conn: asyncpg.Connection,
    tenant: TenantHandle,
    task_id: uuid.UUID,
    type: str,
    when: datetime,
    **data: Any,
) -> None:
    await conn.execute(
        "INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data) VALUES ($1, $2,"
        " (SELECT coalesce(max(seq), 0) + 1 FROM task_events WHERE task_id = $2), $3, $4, $5)",
        tenant.id,
        task_id,
        type,
        when,
        data,
    )


async def add_model_call(
    conn: asyncpg.Connection,
    tenant: TenantHandle,
    task_id: uuid.UUID,
    agent: str,
    tokens: tuple[int, int],
    cost: str,
    when: datetime,
) -> None:
    usage = {"input_tokens": tokens[0], "output_tokens": tokens[1]}
    await add_event(
        conn,
        tenant,
        task_id,
        "llm.call",
        when,
        agent=agent,
        model="gpt-4o-mini",
        usage=usage,
        cost_usd=cost,
        latency_ms=420,
    )


async def viewer_headers(owner_pool: asyncpg.Pool, tenant: TenantHandle) -> dict[str, str]:
    async with transaction(owner_pool) as conn:
        _, key = await tenants_service.create_api_key(
            conn, tenant_id=tenant.id, name="dashboard", role=Role.viewer
        )
    return {"Authorization": f"Bearer {key}"}


def crew_row(panel: dict[str, Any], crew: str) -> dict[str, Any]:
    row: dict[str, Any] = next(row for row in panel["crews"] if row["crew"] == crew)
    return row


# --- agents -----------------------------------------------------------------------------------


@pytest.fixture
async def seeded_runs(
    owner_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> dict[str, uuid.UUID]:
    async with transaction(owner_pool) as conn:
        a, b = tenant_a, tenant_b
        ids = {
            "ok_60s": await add_task(
                conn,
                a,
                "marketing",
                "succeeded",
                started=at(1),
                seconds=60,
                tokens=(100, 50),
                cost="0.010000",
            ),
            "ok_120s": await add_task(
                conn,
                a,
                "marketing",
                "succeeded",
                started=at(2),
                seconds=120,
                tokens=(200, 100),
                cost="0.020000",
            ),
            "failed_today": await add_task(
                conn,
                a,
                "marketing",
                "failed",
                started=at(3),
                seconds=300,
                tokens=(10, 0),
                cost="0.001000",
                error="Google Ads refused the budget",
            ),
            "running": await add_task(conn, a, "marketing", "running", started=at(4)),
            "queued": await add_task(conn, a, "marketing", "queued", created=at(4)),
            "yesterday_ok": await add_task(
                conn,
                a,
                "marketing",
                "succeeded",
                started=at(-3),
                seconds=30,
                tokens=(999, 999),
                cost="9",
            ),
            "yesterday_failed": await add_task(
                conn, a, "marketing", "failed", started=at(-2), seconds=5, error="older error"
            ),
            "analytics_old_failure": await add_task(
                conn,
                a,
                "analytics",
                "failed",
                started=at(-30),
                seconds=10,
                error="the warehouse timed out",
            ),
            "analytics_waiting": await add_task(
                conn, a, "analytics", "awaiting_approval", started=at(1), seconds=30
            ),
            "router_answer": await add_task(
                conn,
                a,
                None,
                "succeeded",
                started=at(2),
                seconds=4,
                tokens=(20, 5),
                cost="0.000500",
            ),
            "assistant_overnight": await add_task(conn, a, "assistant", "running", started=at(-1)),
        }
        # Another tenant's busy day never shows in A's panel.
        for n in range(3):
            await add_task(
                conn,
                b,
                "marketing",
                "failed",
                started=at(1 + n),
                seconds=7,
                tokens=(5000, 5000),
                cost="5",
                error="tenant B's secret trouble",
            )
        await add_task(conn, b, "marketing", "running", started=at(2))
        await add_task(conn, b, None, "failed", started=at(2), seconds=1, error="B router error")
    return ids


async def test_agents_panel_shows_todays_runs_per_crew_as_the_dashboard_reads_them(
    client: AsyncClient, tenant_a: TenantHandle, seeded_runs: dict[str, uuid.UUID]
) -> None:
    response = await client.get("/v1/panels/agents", headers=tenant_a.headers)

    assert response.status_code == 200, response.text
    panel = response.json()
    assert datetime.fromisoformat(panel["since"]) == MIDNIGHT
    marketing = crew_row(panel, "marketing")
    assert marketing["runs_today"] == 4  # three ended and one running; queued is no run
    assert marketing["succeeded_today"] == 2
    assert marketing["failed_today"] == 1
    assert marketing["success_rate"] == 0.6667
    assert marketing["p50_duration_seconds"] == 120.0
    assert marketing["input_tokens"] == 310
    assert marketing["output_tokens"] == 150
    assert usd(marketing["cost_usd"]) == Decimal("0.031")
    assert marketing["running_now"] == 1
    assert marketing["last_error"] == {
        "task_id": str(seeded_runs["failed_today"]),
        "code": "run_failed",
        "message": "Google Ads refused the budget",
        "at": marketing["last_error"]["at"],
    }
    assert datetime.fromisoformat(marketing["last_error"]["at"]) == at(3, seconds=300)


async def test_each_agent_shows_its_own_steps_model_calls_tokens_and_cost(
    client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    seeded_runs: dict[str, uuid.UUID],
) -> None:
    first, second, *_ = [agent.role for agent in CREWS["marketing"].agents]
    async with transaction(owner_pool) as conn:
        for task, start in (("ok_60s", at(1)), ("ok_120s", at(2))):
            task_id = seeded_runs[task]
            await add_event(
                conn, tenant_a, task_id, "agent.step", start, agent=first, status="started"
            )
            await add_model_call(conn, tenant_a, task_id, first, (1200, 300), "0.000469", start)
            await add_event(
                conn, tenant_a, task_id, "tool.call", start, agent=first, tool="google_ads"
            )
        task_id = seeded_runs["ok_120s"]
        await add_event(
            conn, tenant_a, task_id, "agent.step", at(2), agent=second, status="started"
        )
        await add_model_call(conn, tenant_a, task_id, second, (10, 5), "0.000002", at(2))
        # Yesterday's run is not today's, whoever's call it was.
        await add_model_call(
            conn, tenant_a, seeded_runs["yesterday_ok"], first, (9, 9), "1", at(-3)
        )

    panel = (await client.get("/v1/panels/agents", headers=tenant_a.headers)).json()

    marketing = crew_row(panel, "marketing")
    assert [agent["role"] for agent in marketing["agents"]] == [
        agent.role for agent in CREWS["marketing"].agents
    ]
    agents = {agent["role"]: agent for agent in marketing["agents"]}
    own = ("runs_today", "steps", "tool_calls", "model_calls", "input_tokens", "output_tokens")
    assert [agents[first][key] for key in own] == [2, 2, 2, 2, 2400, 600]
    assert agents[first]["cost_usd"] == "0.000938"  # a decimal string, to the ledger's precision
    assert [agents[second][key] for key in own] == [1, 1, 0, 1, 10, 5]
    assert agents[second]["cost_usd"] == "0.000002"
    for quiet in CREWS["marketing"].agents[2:]:
        assert agents[quiet.role]["model_calls"] == 0 and agents[quiet.role]["cost_usd"] == "0"
    assert marketing["cost_usd"] == "0.031000"  # the crew's, from its tasks


async def test_p50_counts_the_crews_work_not_the_wait_for_approval(
    client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with transaction(owner_pool) as conn:
        for seconds in (20, 40):
            await add_task(conn, tenant_a, "ecommerce", "succeeded", started=at(1), seconds=seconds)
        # Worked 10 s, then waited an hour for a person's approval before it was settled.
        for status in ("succeeded", "awaiting_approval"):
            waited = await add_task(
                conn, tenant_a, "ecommerce", status, started=at(2), seconds=3600
            )
            await add_event(conn, tenant_a, waited, "task.awaiting_approval", at(2, seconds=10))

    panel = (await client.get("/v1/panels/agents", headers=tenant_a.headers)).json()

    ecommerce = crew_row(panel, "ecommerce")
    assert ecommerce["runs_today"] == 4
    assert ecommerce["p50_duration_seconds"] == 15.0  # of 10, 10, 20 and 40 s of work


async def test_today_is_the_asked_zones_day(
    client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    tokyo_midnight = datetime.combine(datetime.now(tokyo).date(), time(), tokyo)
    async with transaction(owner_pool) as conn:
        await add_task(
            conn,
            tenant_a,
            "operations",
            "succeeded",
            started=tokyo_midnight + timedelta(minutes=1),
            seconds=5,
        )
        await add_task(
            conn,
            tenant_a,
            "operations",
            "succeeded",
            started=tokyo_midnight - timedelta(minutes=1),
            seconds=5,
        )

    response = await client.get(
        "/v1/panels/agents", params={"tz": "Asia/Tokyo"}, headers=tenant_a.headers
    )

    assert response.status_code == 200, response.text
    panel = response.json()
    assert panel["tz"] == "Asia/Tokyo"
    assert datetime.fromisoformat(panel["since"]) == tokyo_midnight
    assert crew_row(panel, "operations")["runs_today"] == 1


@pytest.mark.parametrize("url", ["/v1/panels/agents", "/v1/panels/usage", "/v1/panels/activity"])
async def test_a_zone_that_is_not_iana_is_a_422_naming_tz(
    client: AsyncClient, tenant_a: TenantHandle, url: str
) -> None:
    response = await client.get(url, params={"tz": "Mars/Olympus"}, headers=tenant_a.headers)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [entry["loc"] for entry in error["details"]["fields"]] == ["query.tz"]


async def test_quiet_crews_router_questions_and_old_failures_read_sensibly(
    client: AsyncClient, tenant_a: TenantHandle, seeded_runs: dict[str, uuid.UUID]
) -> None:
    panel = (await client.get("/v1/panels/agents", headers=tenant_a.headers)).json()

    assert [row["crew"] for row in panel["crews"]] == [*CREWS, "router"]
    analytics = crew_row(panel, "analytics")
    # Waiting for approval: a run today that has neither succeeded nor failed yet.
    assert analytics["runs_today"] == 1
    assert analytics["success_rate"] is None
    assert analytics["p50_duration_seconds"] == 30.0
    assert analytics["last_error"]["message"] == "the warehouse timed out"
    assert analytics["last_error"]["task_id"] == str(seeded_runs["analytics_old_failure"])
    assistant = crew_row(panel, "assistant")
    assert assistant["runs_today"] == 0 and assistant["running_now"] == 1
    assert assistant["p50_duration_seconds"] is None and assistant["last_error"] is None
    router = crew_row(panel, "router")
    assert router["agents"] == []
    assert router["runs_today"] == 1 and router["success_rate"] == 1.0
    assert router["p50_duration_seconds"] == 4.0
    assert (router["input_tokens"], router["output_tokens"]) == (20, 5)
    assert router["last_error"] is None  # B's router error stays B's
    operations = crew_row(panel, "operations")
    assert operations["runs_today"] == 0 and usd(operations["cost_usd"]) == 0


async def test_another_tenants_runs_never_show_in_the_agents_panel(
    client: AsyncClient,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    seeded_runs: dict[str, uuid.UUID],
) -> None:
    a_panel = (await client.get("/v1/panels/agents", headers=tenant_a.headers)).json()
    b_panel = (await client.get("/v1/panels/agents", headers=tenant_b.headers)).json()

    assert "secret trouble" not in str(a_panel)
    assert crew_row(b_panel, "marketing")["runs_today"] == 4
    assert crew_row(b_panel, "marketing")["success_rate"] == 0.0
    assert crew_row(b_panel, "analytics")["last_error"] is None
    assert crew_row(b_panel, "router")["last_error"]["message"] == "B router error"


# --- usage ------------------------------------------------------------------------------------


@pytest.fixture
async def seeded_usage(
    owner_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    a = tenant_a
    async with transaction(owner_pool) as conn:
        marketing = await add_task(conn, a, "marketing", "succeeded", started=at(-1), seconds=1)
        routed = await add_task(conn, a, None, "succeeded", started=at(-1), seconds=1)
        await add_usage(
            conn, a, "2025-03-01T10:00", "openai", "byok", (1000, 200), "0.004", marketing
        )
        await add_usage(
            conn, a, "2025-03-01T11:00", "opshub", "byok", (0, 0), "0.01", marketing, "run_fee"
        )
        await add_usage(
            conn, a, "2025-03-01T11:30", "openai", "platform", (500, 100), "0.0025", marketing
        )
        await add_usage(conn, a, "2025-03-02T08:00", "openai", "platform", (10, 10), "0.0001", None)
        await add_usage(
            conn, a, "2025-03-03T23:59:59", "anthropic", "platform", (300, 30), "0.0015", routed
        )
        # Just outside 2025-03-01..03 (UTC) on either side.
        await add_usage(conn, a, "2025-02-28T23:59:59", "openai", "byok", (7, 7), "1", marketing)
        await add_usage(conn, a, "2025-03-04T00:00", "anthropic", "platform", (7, 7), "1", routed)
        b_task = await add_task(conn, tenant_b, "marketing", "succeeded", started=at(-1), seconds=1)
        await add_usage(
            conn, tenant_b, "2025-03-01T12:00", "openai", "platform", (99999, 9999), "9.99", b_task
        )


def amounts(calls: int, tokens_in: int, tokens_out: int, cost: str) -> dict[str, Any]:
    return {"calls": calls, "input_tokens": tokens_in, "output_tokens": tokens_out, "cost": cost}


def read_amounts(split: dict[str, Any]) -> dict[str, Any]:
    return amounts(
        split["calls"],
        split["input_tokens"],
        split["output_tokens"],
        str(usd(split["cost_usd"]).normalize()),
    )


def read_row(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["key"],
        read_amounts(row["byok"]),
        read_amounts(row["platform"]),
        str(usd(row["run_fees_usd"]).normalize()),
        str(usd(row["billable_usd"]).normalize()),
    )


NONE = amounts(0, 0, 0, "0")
WINDOW = {"from": "2025-03-01", "to": "2025-03-03"}


async def test_usage_by_day_lists_every_day_with_byok_apart_from_platform(
    client: AsyncClient, tenant_a: TenantHandle, seeded_usage: None
) -> None:
    response = await client.get(
        "/v1/panels/usage", params={**WINDOW, "group_by": "day"}, headers=tenant_a.headers
    )

    assert response.status_code == 200, response.text
    panel = response.json()
    assert (panel["from"], panel["to"], panel["group_by"]) == ("2025-03-01", "2025-03-03", "day")
    assert [read_row(row) for row in panel["rows"]] == [
        (
            "2025-03-01",
            amounts(1, 1000, 200, "0.004"),
            amounts(1, 500, 100, "0.0025"),
            "0.01",
            "0.0125",
        ),
        ("2025-03-02", NONE, amounts(1, 10, 10, "0.0001"), "0", "0.0001"),
        ("2025-03-03", NONE, amounts(1, 300, 30, "0.0015"), "0", "0.0015"),
    ]
    assert read_row(panel["total"]) == (
        "total",
        amounts(1, 1000, 200, "0.004"),
        amounts(3, 810, 140, "0.0041"),
        "0.01",
        "0.0141",
    )


async def test_usage_days_are_the_asked_zones_days(
    client: AsyncClient, tenant_a: TenantHandle, seeded_usage: None
) -> None:
    response = await client.get(
        "/v1/panels/usage",
        params={**WINDOW, "group_by": "day", "tz": "Asia/Tokyo"},
        headers=tenant_a.headers,
    )

    assert response.status_code == 200, response.text
    panel = response.json()
    assert panel["tz"] == "Asia/Tokyo"
    # 2025-02-28 23:59:59 UTC is March 1st in Tokyo; 2025-03-03 23:59:59 UTC is March 4th.
    assert [
        (row["key"], row["byok"]["calls"], row["platform"]["calls"]) for row in panel["rows"]
    ] == [
        ("2025-03-01", 2, 1),
        ("2025-03-02", 0, 1),
        ("2025-03-03", 0, 0),
    ]
    assert panel["rows"][0]["byok"]["cost_usd"] == "1.004000"


async def test_usage_by_crew_counts_router_questions_and_taskless_calls_apart(
    client: AsyncClient, tenant_a: TenantHandle, seeded_usage: None
) -> None:
    response = await client.get(
        "/v1/panels/usage", params={**WINDOW, "group_by": "crew"}, headers=tenant_a.headers
    )

    assert response.status_code == 200, response.text
    assert [read_row(row) for row in response.json()["rows"]] == [
        (
            "marketing",
            amounts(1, 1000, 200, "0.004"),
            amounts(1, 500, 100, "0.0025"),
            "0.01",
            "0.0125",
        ),
        ("other", NONE, amounts(1, 10, 10, "0.0001"), "0", "0.0001"),
        ("router", NONE, amounts(1, 300, 30, "0.0015"), "0", "0.0015"),
    ]


async def test_usage_by_provider_keeps_byok_run_fees_under_opshub(
    client: AsyncClient, tenant_a: TenantHandle, seeded_usage: None
) -> None:
    response = await client.get(
        "/v1/panels/usage", params={**WINDOW, "group_by": "provider"}, headers=tenant_a.headers
    )

    assert response.status_code == 200, response.text
    assert [read_row(row) for row in response.json()["rows"]] == [
        ("anthropic", NONE, amounts(1, 300, 30, "0.0015"), "0", "0.0015"),
        ("openai", amounts(1, 1000, 200, "0.004"), amounts(2, 510, 110, "0.0026"), "0", "0.0026"),
        ("opshub", NONE, NONE, "0.01", "0.01"),
    ]


async def test_usage_defaults_to_the_last_30_days_up_to_today(
    client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    today = datetime.now(UTC).date()
    async with transaction(owner_pool) as conn:
        await add_usage(conn, tenant_a, MIDNIGHT, "openai", "platform", (40, 2), "0.0004", None)
        await add_usage(
            conn, tenant_a, at(-24 * 30), "openai", "platform", (1, 1), "5", None
        )  # 30 days ago: one day before the window

    panel = (await client.get("/v1/panels/usage", headers=tenant_a.headers)).json()

    assert panel["to"] == today.isoformat()
    assert panel["from"] == (today - timedelta(days=29)).isoformat()
    assert panel["group_by"] == "day"
    assert len(panel["rows"]) == 30
    assert panel["rows"][-1]["key"] == today.isoformat()
    assert read_amounts(panel["rows"][-1]["platform"]) == amounts(1, 40, 2, "0.0004")
    assert read_amounts(panel["total"]["platform"]) == amounts(1, 40, 2, "0.0004")


async def test_another_tenants_usage_never_shows(
    client: AsyncClient, tenant_b: TenantHandle, seeded_usage: None
) -> None:
    panel = (
        await client.get(
            "/v1/panels/usage", params={**WINDOW, "group_by": "provider"}, headers=tenant_b.headers
        )
    ).json()

    assert [read_row(row) for row in panel["rows"]] == [
        ("openai", NONE, amounts(1, 99999, 9999, "9.99"), "0", "9.99")
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-03-05", "to": "2025-03-01"}, "query.from"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "query.from"),  # 367 days
        ({"from": "yesterday"}, "query.from"),
        ({"to": "2025-02-30"}, "query.to"),
        ({"group_by": "week"}, "query.group_by"),
    ],
)
async def test_a_bad_window_or_grouping_is_a_422_naming_the_field(
    client: AsyncClient, tenant_a: TenantHandle, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/panels/usage", params=params, headers=tenant_a.headers)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in [entry["loc"] for entry in error["details"]["fields"]]


async def test_a_window_of_exactly_366_days_is_allowed(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.get(
        "/v1/panels/usage",
        params={"from": "2024-01-01", "to": "2024-12-31"},
        headers=tenant_a.headers,
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["rows"]) == 366


# --- activity ---------------------------------------------------------------------------------


async def test_activity_panel_shows_recent_tasks_approvals_credentials_and_next_runs(
    client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    now = datetime.now(UTC)
    async with transaction(owner_pool) as conn:
        a_tasks = [
            await add_task(
                conn,
                tenant_a,
                "ecommerce",
                "succeeded",
                created=now - timedelta(minutes=30 - n),
                input=f"task {n} " + "x" * 300,
            )
            for n in range(12)
        ]
        failed = await add_task(
            conn, tenant_a, "marketing", "failed", created=now, error="Meta said no"
        )
        b_task = await add_task(conn, tenant_b, "marketing", "queued", created=now)
        for tenant, task, status, key in [
            (tenant_a, a_tasks[0], "pending", "a1"),
            (tenant_a, a_tasks[1], "approved", "a2"),
            (tenant_b, b_task, "pending", "b1"),
        ]:
            await conn.execute(
                "INSERT INTO actions (tenant_id, task_id, tool, kind, payload, summary, status,"
                " idempotency_key) VALUES ($1, $2, 'saleor', 'saleor.order_note', $3, $4, $5, $6)",
                tenant.id,
                task,
                {"order_id": "T3JkZXI6MQ==", "message": "Shipped"},
                f"Note on the order ({key})",
                status,
                key,
            )
        for tenant, provider, health in [
            (tenant_a, "openai", "healthy"),
            (tenant_a, "anthropic", "invalid"),
            (tenant_b, "meta_ads", "healthy"),
        ]:
            await conn.execute(
                "INSERT INTO credentials (tenant_id, provider, fingerprint, last4, backend,"
                " status, checked_at) VALUES ($1, $2, 'fp', 'abcd', 'vault', $3, now())",
                tenant.id,
                provider,
                health,
            )
        for tenant, crew, next_run, enabled in [
            (tenant_a, "analytics", now + timedelta(days=1), True),
            (tenant_a, "marketing", now + timedelta(hours=2), True),
            (tenant_a, "operations", None, False),
            (tenant_b, "marketing", now + timedelta(minutes=1), True),
        ]:
            await conn.execute(
                "INSERT INTO schedules (tenant_id, crew, input, cron, timezone, enabled,"
                " next_run_at) VALUES ($1, $2, 'Weekly report', '0 9 * * MON', 'Europe/Berlin',"
                " $3, $4)",
                tenant.id,
                crew,
                enabled,
                next_run,
            )

    viewer = await viewer_headers(owner_pool, tenant_a)
    response = await client.get("/v1/panels/activity", headers=viewer)

    assert response.status_code == 200, response.text
    panel = response.json()
    recent = panel["recent_tasks"]
    assert [task["id"] for task in recent] == [str(failed)] + [
        str(task) for task in reversed(a_tasks[-9:])
    ]
    assert recent[0]["status"] == "failed"
    assert recent[0]["error"] == {"code": "run_failed", "message": "Meta said no"}
    assert len(recent[1]["input"]) == 200 and recent[1]["input"].startswith("task 11 ")
    assert [a["summary"] for a in panel["pending_approvals"]] == ["Note on the order (a1)"]
    assert panel["pending_approvals"][0]["task_id"] == str(a_tasks[0])
    health = {c["provider"]: (c["source"], c["status"]) for c in panel["credentials"]}
    assert health["openai"] == ("byok", "healthy")
    assert health["anthropic"] == ("byok", "invalid")
    assert health["meta_ads"][0] == "none"  # B's key is B's
    assert "secret" not in str(panel["credentials"])
    assert [(run["crew"], run["cron"], run["timezone"]) for run in panel["next_runs"]] == [
        ("marketing", "0 9 * * MON", "Europe/Berlin"),
        ("analytics", "0 9 * * MON", "Europe/Berlin"),
    ]
    assert str(b_task) not in {task["id"] for task in recent}


async def test_recent_runs_page_with_limit_and_cursor(
    client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    now = datetime.now(UTC)
    async with transaction(owner_pool) as conn:
        made = [
            await add_task(
                conn, tenant_a, "analytics", "succeeded", created=now - timedelta(minutes=n)
            )
            for n in range(7)
        ]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/panels/activity", params=params, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        panel = response.json()
        assert len(panel["recent_tasks"]) <= 3
        seen += [task["id"] for task in panel["recent_tasks"]]
        pages += 1
        cursor = panel["next_cursor"]
        if cursor is None:
            break

    assert seen == [str(task) for task in made]  # newest first, each once
    assert pages == 3
    bad = await client.get(
        "/v1/panels/activity", params={"cursor": "not-ours"}, headers=tenant_a.headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    too_many = await client.get(
        "/v1/panels/activity", params={"limit": 101}, headers=tenant_a.headers
    )
    assert too_many.status_code == 422


async def test_a_new_tenant_sees_empty_panels(client: AsyncClient, tenant_a: TenantHandle) -> None:
    agents = (await client.get("/v1/panels/agents", headers=tenant_a.headers)).json()
    activity = (await client.get("/v1/panels/activity", headers=tenant_a.headers)).json()

    assert all(row["runs_today"] == 0 and row["last_error"] is None for row in agents["crews"])
    assert activity["recent_tasks"] == []
    assert activity["pending_approvals"] == []
    assert activity["next_runs"] == []


# --- roles ------------------------------------------------------------------------------------


async def test_a_viewer_reads_every_panel_and_no_one_reads_them_unauthenticated(
    client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    viewer = await viewer_headers(owner_pool, tenant_a)

    for url in ("/v1/panels/agents", "/v1/panels/usage", "/v1/panels/activity"):
        assert (await client.get(url, headers=viewer)).status_code == 200, url
        anonymous = await client.get(url)
        assert anonymous.status_code == 401, url


# --- trends -----------------------------------------------------------------------------------


async def test_trends_give_cost_by_day_and_crew_runs_by_outcome_and_work_time_per_crew(
    client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    async with transaction(owner_pool) as conn:
        await conn.execute(
            "INSERT INTO tenant_budgets (tenant_id, monthly_platform_usd) VALUES ($1, 50)",
            tenant_a.id,
        )
        marketing = await add_task(
            conn, tenant_a, "marketing", "succeeded", started=at(-20), seconds=30
        )
        waited = await add_task(
            conn, tenant_a, "marketing", "succeeded", started=at(1), seconds=7200
        )
        await add_event(conn, tenant_a, waited, "task.awaiting_approval", at(1, seconds=10))
        await add_task(conn, tenant_a, "marketing", "failed", started=at(1), seconds=50)
        await add_task(conn, tenant_a, "analytics", "cancelled", created=at(2))
        await add_usage(conn, tenant_a, at(-20), "openai", "byok", (10, 1), "0.000469", marketing)
        await add_usage(conn, tenant_a, at(1), "openai", "platform", (10, 1), "0.25", waited)
        await add_usage(conn, tenant_a, at(1), "openai", "platform", (10, 1), "0.5", None)
        b_task = await add_task(conn, tenant_b, "marketing", "failed", started=at(1), seconds=9)
        await add_usage(conn, tenant_b, at(1), "openai", "platform", (10, 1), "9", b_task)

    today = MIDNIGHT.date()
    yesterday = today - timedelta(days=1)
    response = await client.get(
        "/v1/panels/trends",
        params={"from": yesterday.isoformat(), "to": today.isoformat()},
        headers=tenant_a.headers,
    )

    assert response.status_code == 200, response.text
    panel = response.json()
    assert panel["days"] == [yesterday.isoformat(), today.isoformat()]
    assert panel["cost"] == [
        {
            "day": yesterday.isoformat(),
            "crew": "marketing",
            "byok_usd": "0.000469",
            "platform_usd": "0",
        },
        {
            "day": today.isoformat(),
            "crew": "marketing",
            "byok_usd": "0",
            "platform_usd": "0.250000",
        },
        {"day": today.isoformat(), "crew": "other", "byok_usd": "0", "platform_usd": "0.500000"},
    ]
    assert {(row["day"], row["status"], row["runs"]) for row in panel["runs"]} == {
        (yesterday.isoformat(), "succeeded", 1),
        (today.isoformat(), "succeeded", 1),
        (today.isoformat(), "failed", 1),
        (today.isoformat(), "cancelled", 1),
    }
    assert panel["durations"] == [
        {"crew": "marketing", "runs": 3, "p50_duration_seconds": 30.0}  # of 10, 30 and 50 s
    ]
    assert panel["budget_usd"] == "50.00"
    assert Decimal(panel["platform_spent_this_month_usd"]) == Decimal("0.75")
