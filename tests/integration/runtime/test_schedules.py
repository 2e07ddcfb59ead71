"""Schedules: the /v1/schedules API and the scheduler that turns due schedules into tasks.

Covers creating, reading, listing, changing and deleting schedules (next run shown in UTC and
right for the schedule's time zone, null while disabled, recomputed when the timing changes),
tenant isolation, refusals with the API.md error envelope, and firing: two schedulers racing over
the same due schedules fire each slot exactly once, a scheduler back from downtime fires a missed
schedule once and moves on, and ``GET /v1/schedules/{id}/runs`` lists what fired. Firing runs on
a database of its own so the session hub's scheduler and worker stay out of it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, create_pool, transaction
from opshub.db.migrate import migrate
from opshub.runtime.scheduler import Scheduler
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# Far enough from now that the session hub's scheduler (if running) never fires them mid-test.
WEEKLY = {"input": "Weekly report", "cron": "0 9 * * MON", "timezone": "Europe/Berlin"}


def parse_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), f"{value} is not in UTC"
    return parsed


def next_local(zone: ZoneInfo, weekday: int, at: time, after: datetime) -> datetime:
    """The next weekday/time on the wall clock in ``zone`` strictly after ``after``, in UTC."""
    today = after.astimezone(zone).date()
    for offset in range(15):
        day = today + timedelta(days=offset)
        candidate = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
        if day.weekday() == weekday and candidate > after:
            return candidate
    raise AssertionError("unreachable")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


async def create(client: AsyncClient, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/schedules", json={**WEEKLY, **body}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    schedule: dict[str, Any] = response.json()
    return schedule


# --- the API --------------------------------------------------------------------------------


async def test_a_created_schedule_shows_its_next_run_in_utc_for_its_zone(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    before = datetime.now(UTC)
    schedule = await create(client, tenant_a, crew="assistant", inputs={"week": "current"})
    after = datetime.now(UTC)

    assert schedule["crew"] == "assistant"
    assert schedule["input"] == "Weekly report"
    assert schedule["inputs"] == {"week": "current"}
    assert schedule["cron"] == "0 9 * * MON"
    assert schedule["timezone"] == "Europe/Berlin"
    assert schedule["enabled"] is True
    assert schedule["last_run_at"] is None
    next_run = parse_utc(schedule["next_run_at"])
    expected = {next_local(BERLIN, 0, time(9), before), next_local(BERLIN, 0, time(9), after)}
    assert next_run in expected
    local = next_run.astimezone(BERLIN)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


async def test_timezone_defaults_to_utc(client: AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.post(
        "/v1/schedules",
        json={"input": "Daily digest", "cron": "15 6 * * *"},
        headers=tenant_a.headers,
    )
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert schedule["timezone"] == "UTC"
    assert schedule["crew"] is None
    next_run = parse_utc(schedule["next_run_at"])
    assert (next_run.hour, next_run.minute) == (6, 15)
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(days=1)


async def test_get_and_list_show_only_the_tenants_own_schedules(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    first = await create(client, tenant_a, input="First")
    second = await create(client, tenant_a, input="Second", timezone="America/New_York")
    theirs = await create(client, tenant_b, input="Theirs")

    got = await client.get(f"/v1/schedules/{second['id']}", headers=tenant_a.headers)
    assert got.status_code == 200
    assert got.json() == second

    listed = await client.get("/v1/schedules", headers=tenant_a.headers)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == [first["id"], second["id"]]
    listed_b = await client.get("/v1/schedules", headers=tenant_b.headers)
    assert [s["id"] for s in listed_b.json()] == [theirs["id"]]


async def test_another_tenant_gets_not_found_for_every_operation(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    schedule = await create(client, tenant_a)
    url = f"/v1/schedules/{schedule['id']}"
    headers = tenant_b.headers
    assert_error(await client.get(url, headers=headers), 404, "not_found")
    assert_error(await client.get(f"{url}/runs", headers=headers), 404, "not_found")
    assert_error(
        await client.patch(url, json={"enabled": False}, headers=headers), 404, "not_found"
    )
    assert_error(await client.delete(url, headers=headers), 404, "not_found")

    unchanged = await client.get(url, headers=tenant_a.headers)
    assert unchanged.json() == schedule


async def test_disabling_hides_the_next_run_and_enabling_recomputes_it(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    schedule = await create(client, tenant_a)
    url = f"/v1/schedules/{schedule['id']}"

    disabled = await client.patch(url, json={"enabled": False}, headers=tenant_a.headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False
    assert disabled.json()["next_run_at"] is None
    assert (await client.get(url, headers=tenant_a.headers)).json()["next_run_at"] is None

    # A change that is not about timing keeps it disabled and hidden.
    renamed = await client.patch(url, json={"input": "Renamed"}, headers=tenant_a.headers)
    assert renamed.json()["input"] == "Renamed"
    assert renamed.json()["next_run_at"] is None

    enabled = await client.patch(url, json={"enabled": True}, headers=tenant_a.headers)
    assert enabled.status_code == 200
    assert enabled.json()["enabled"] is True
    assert parse_utc(enabled.json()["next_run_at"]) == parse_utc(schedule["next_run_at"])


async def test_changing_the_cron_or_zone_recomputes_the_next_run(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    schedule = await create(client, tenant_a)
    url = f"/v1/schedules/{schedule['id']}"

    before = datetime.now(UTC)
    friday = await client.patch(url, json={"cron": "0 18 * * FRI"}, headers=tenant_a.headers)
    after = datetime.now(UTC)
    assert friday.status_code == 200, friday.text
    body = friday.json()
    assert body["cron"] == "0 18 * * FRI"
    assert parse_utc(body["next_run_at"]) in {
        next_local(BERLIN, 4, time(18), before),
        next_local(BERLIN, 4, time(18), after),
    }
    assert parse_utc(body["updated_at"]) >= parse_utc(schedule["updated_at"])

    before = datetime.now(UTC)
    moved = await client.patch(url, json={"timezone": "America/New_York"}, headers=tenant_a.headers)
    after = datetime.now(UTC)
    assert moved.status_code == 200, moved.text
    assert moved.json()["cron"] == "0 18 * * FRI"
    assert parse_utc(moved.json()["next_run_at"]) in {
        next_local(NEW_YORK, 4, time(18), before),
        next_local(NEW_YORK, 4, time(18), after),
    }
    stored = await client.get(url, headers=tenant_a.headers)
    assert stored.json() == moved.json()


async def test_deleting_a_schedule_answers_204_then_404(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    schedule = await create(client, tenant_a)
    url = f"/v1/schedules/{schedule['id']}"
    deleted = await client.delete(url, headers=tenant_a.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(await client.get(url, headers=tenant_a.headers), 404, "not_found")
    assert_error(await client.delete(url, headers=tenant_a.headers), 404, "not_found")
    assert_error(await client.get(f"{url}/runs", headers=tenant_a.headers), 404, "not_found")
    listed = await client.get("/v1/schedules", headers=tenant_a.headers)
    assert schedule["id"] not in [s["id"] for s in listed.json()]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"cron": "61 9 * * MON"}, "invalid_request", "body.cron"),
        ({"cron": "0 9 * * MON *"}, "invalid_request", "body.cron"),
        ({"cron": "not a cron"}, "invalid_request", "body.cron"),
        ({"timezone": "Mars/Olympus"}, "invalid_request", "body.timezone"),
        ({"timezone": "europe/berlin"}, "invalid_request", "body.timezone"),
        ({"crew": "no-such-crew"}, "unknown_crew", None),
        ({"surprise": True}, "invalid_request", "body.surprise"),
        ({"input": ""}, "invalid_request", "body.input"),
    ],
)
async def test_bad_schedules_are_refused_on_create_and_on_change(
    client: AsyncClient,
    tenant_a: TenantHandle,
    change: dict[str, Any],
    code: str,
    field: str | None,
) -> None:
    error = assert_error(
        await client.post("/v1/schedules", json={**WEEKLY, **change}, headers=tenant_a.headers),
        422,
        code,
    )
    if field is not None:
        assert field in [f["loc"] for f in error["details"]["fields"]], error
    listed = await client.get("/v1/schedules", headers=tenant_a.headers)
    assert listed.json() == []

    schedule = await create(client, tenant_a)
    url = f"/v1/schedules/{schedule['id']}"
    assert_error(await client.patch(url, json=change, headers=tenant_a.headers), 422, code)
    assert (await client.get(url, headers=tenant_a.headers)).json() == schedule


async def test_a_daily_nickname_fires_at_midnight_in_the_schedules_zone(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    schedule = await create(client, tenant_a, cron="@daily", timezone="America/New_York")

    assert schedule["cron"] == "@daily"
    local = parse_utc(schedule["next_run_at"]).astimezone(NEW_YORK)
    assert (local.hour, local.minute) == (0, 0)


async def test_a_cron_out_of_range_says_which_field_and_range(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/v1/schedules", json={**WEEKLY, "cron": "0 25 * * *"}, headers=tenant_a.headers
    )
    error = assert_error(response, 422, "invalid_request")
    assert "hour 25 is out of range 0–23" in error["message"]
    assert error["details"]["fields"] == [
        {"loc": "body.cron", "message": "hour 25 is out of range 0–23"}
    ]


async def test_a_cron_that_can_never_fire_is_refused(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/v1/schedules", json={**WEEKLY, "cron": "0 9 30 2 *"}, headers=tenant_a.headers
    )
    assert_error(response, 422, "invalid_request")


# --- firing, on a database of its own ------------------------------------------------------


@dataclass
class FiringDb:
    urls: DatabaseUrls
    pool: asyncpg.Pool
    client: AsyncClient

    async def tenant(self, name: str) -> TenantHandle:
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        async with transaction(self.pool) as conn:
            tenant, key = await tenants_service.create_tenant(
                conn, name=name, owner_email=email, password="correct horse battery"
            )
        return TenantHandle(tenant.id, name, email, "correct horse battery", key)

    async def make_due(self, schedule_id: str, at: datetime) -> None:
        await self.pool.execute(
            "UPDATE schedules SET next_run_at = $2 WHERE id = $1", uuid.UUID(schedule_id), at
        )

    async def runs(self, schedule_id: str) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT * FROM tasks WHERE schedule_id = $1 ORDER BY created_at",
            uuid.UUID(schedule_id),
        )


@pytest.fixture
async def firing(fresh_database: DatabaseUrls, settings: Settings) -> AsyncIterator[FiringDb]:
    await migrate(fresh_database)
    quiet = settings.model_copy(update={"credential_check_minutes": 0, "database_pool_size": 2})
    application: FastAPI = create_app(quiet, fresh_database)
    pool = await create_pool(fresh_database.owner, size=2)
    try:
        async with (
            application.router.lifespan_context(application),
            AsyncClient(transport=ASGITransport(app=application), base_url="http://opshub") as c,
        ):
            yield FiringDb(fresh_database, pool, c)
    finally:
        await pool.close()


async def test_two_schedulers_racing_fire_each_due_slot_exactly_once(firing: FiringDb) -> None:
    tenants = [await firing.tenant("Acme"), await firing.tenant("Blue")]
    schedules = [
        await create(firing.client, tenants[i % 2], input=f"Report {i}", crew="assistant")
        for i in range(12)
    ]
    pools = [await create_pool(firing.urls.owner, size=1) for _ in range(2)]
    schedulers = [Scheduler(owner_pool=pool) for pool in pools]
    rounds = 8
    fired_total = 0
    try:
        for slot in range(rounds):
            # A new slot comes due for every schedule; both schedulers go for it, repeatedly.
            due_at = datetime(2026, 1, 5, 8, tzinfo=UTC) + timedelta(weeks=slot)
            for schedule in schedules:
                await firing.make_due(schedule["id"], due_at)
            for _ in range(3):
                counts = await asyncio.gather(*(s.fire_due() for s in schedulers))
                fired_total += sum(counts)
    finally:
        for pool in pools:
            await pool.close()

    assert fired_total == len(schedules) * rounds
    for index, schedule in enumerate(schedules):
        runs = await firing.runs(schedule["id"])
        assert len(runs) == rounds, (schedule["id"], len(runs))
        owner = tenants[index % 2].id
        assert {(r["tenant_id"], r["status"], r["crew"], r["input"]) for r in runs} == {
            (owner, "queued", "assistant", f"Report {index}")
        }


async def test_a_schedule_missed_while_the_scheduler_was_down_fires_once(
    firing: FiringDb,
) -> None:
    tenant = await firing.tenant("Acme")
    schedule = await create(
        firing.client, tenant, cron="*/5 * * * *", timezone="UTC", input="Every five minutes"
    )
    # The scheduler was down for an hour: twelve slots went by.
    await firing.pool.execute(
        "UPDATE schedules SET next_run_at = now() - interval '1 hour' WHERE id = $1",
        uuid.UUID(schedule["id"]),
    )
    scheduler = Scheduler(owner_pool=firing.pool)
    assert await scheduler.fire_due() == 1
    assert await scheduler.fire_due() == 0

    runs = await firing.runs(schedule["id"])
    assert len(runs) == 1
    row = await firing.pool.fetchrow(
        "SELECT next_run_at, last_run_at, now() AS now FROM schedules WHERE id = $1",
        uuid.UUID(schedule["id"]),
    )
    assert row["now"] < row["next_run_at"] <= row["now"] + timedelta(minutes=5)
    assert row["next_run_at"].minute % 5 == 0 and row["next_run_at"].second == 0
    assert row["last_run_at"] is not None

    shown = await firing.client.get(f"/v1/schedules/{schedule['id']}", headers=tenant.headers)
    assert parse_utc(shown.json()["next_run_at"]) == row["next_run_at"]
    assert shown.json()["last_run_at"] is not None


async def test_disabled_and_not_yet_due_schedules_do_not_fire(firing: FiringDb) -> None:
    tenant = await firing.tenant("Acme")
    later = await create(firing.client, tenant, input="Not yet")
    paused = await create(firing.client, tenant, input="Paused", enabled=False)
    await firing.make_due(paused["id"], datetime.now(UTC) - timedelta(hours=1))
    assert await Scheduler(owner_pool=firing.pool).fire_due() == 0
    assert await firing.runs(later["id"]) == []
    assert await firing.runs(paused["id"]) == []


async def test_the_runs_of_a_schedule_are_listed_newest_first(firing: FiringDb) -> None:
    tenant = await firing.tenant("Acme")
    other = await firing.tenant("Blue")
    schedule = await create(firing.client, tenant, crew="assistant", inputs={"week": 1})
    unrelated = await create(firing.client, tenant, input="Unrelated")
    scheduler = Scheduler(owner_pool=firing.pool)
    for slot in range(3):
        await firing.make_due(
            schedule["id"], datetime(2026, 2, 2, 8, tzinfo=UTC) + timedelta(weeks=slot)
        )
        assert await scheduler.fire_due() == 1
    await firing.make_due(unrelated["id"], datetime(2026, 2, 2, 8, tzinfo=UTC))
    assert await scheduler.fire_due() == 1

    url = f"/v1/schedules/{schedule['id']}/runs"
    response = await firing.client.get(url, headers=tenant.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    fired = [r["id"] for r in reversed(await firing.runs(schedule["id"]))]
    assert [t["id"] for t in page["items"]] == [str(i) for i in fired]
    assert page["next_cursor"] is None
    for task in page["items"]:
        assert task["schedule_id"] == schedule["id"]
        assert task["status"] == "queued"
        assert task["crew"] == "assistant"
        assert task["inputs"] == {"week": 1}

    first_page = await firing.client.get(url, params={"limit": 2}, headers=tenant.headers)
    assert len(first_page.json()["items"]) == 2
    rest = await firing.client.get(
        url,
        params={"limit": 2, "cursor": first_page.json()["next_cursor"]},
        headers=tenant.headers,
    )
    assert [t["id"] for t in first_page.json()["items"] + rest.json()["items"]] == [
        str(i) for i in fired
    ]

    # The runs are tasks like any other: listed under /v1/tasks too.
    task = await firing.client.get(f"/v1/tasks/{fired[0]}", headers=tenant.headers)
    assert task.json()["schedule_id"] == schedule["id"]
    assert_error(await firing.client.get(url, headers=other.headers), 404, "not_found")


async def test_runs_outlive_their_deleted_schedule(firing: FiringDb) -> None:
    tenant = await firing.tenant("Acme")
    schedule = await create(firing.client, tenant)
    await firing.make_due(schedule["id"], datetime(2026, 2, 2, 8, tzinfo=UTC))
    assert await Scheduler(owner_pool=firing.pool).fire_due() == 1
    task_id = (await firing.runs(schedule["id"]))[0]["id"]

    deleted = await firing.client.delete(f"/v1/schedules/{schedule['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    task = await firing.client.get(f"/v1/tasks/{task_id}", headers=tenant.headers)
    assert task.status_code == 200
    assert task.json()["schedule_id"] is None
