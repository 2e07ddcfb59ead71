"""The queue's own operations, called directly on a database of their own (no hub worker).

Covers ``opshub.runtime.queue``: fair claiming across tenants (a tenant's backlog never holds
back another tenant's next task), per-tenant running limits under concurrent claimers, priority
order within a tenant, leases of dead workers (requeued with backoff and the attempt kept, failed
with ``worker_lost`` after the last attempt, ``cancelled`` if a cancel was asked), lease renewal
and handing tasks back on shutdown.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from opshub.db.engine import DatabaseUrls, create_pool, tenant_transaction, transaction
from opshub.db.migrate import migrate
from opshub.runtime import queue
from opshub.tasks import service as tasks_service
from opshub.tasks.schemas import TaskCreate
from opshub.tenants import service as tenants_service

BIG_LIMIT = 1000


@dataclass
class QueueDb:
    urls: DatabaseUrls
    pool: asyncpg.Pool

    async def tenant(self, name: str, *, max_running: int | None = None) -> uuid.UUID:
        async with transaction(self.pool) as conn:
            tenant, _ = await tenants_service.create_tenant(
                conn,
                name=name,
                owner_email=f"owner-{uuid.uuid4().hex[:10]}@example.com",
                password="correct horse battery",
            )
            if max_running is not None:
                await conn.execute(
                    "UPDATE tenants SET max_running_tasks = $2 WHERE id = $1",
                    tenant.id,
                    max_running,
                )
        return tenant.id

    async def add_tasks(
        self, tenant_id: uuid.UUID, count: int, *, priority: int = 0, age_seconds: float = 3600
    ) -> None:
        """``count`` queued tasks, created one millisecond apart starting ``age_seconds`` ago."""
        await self.pool.execute(
            """
            INSERT INTO tasks (tenant_id, input, priority, created_at)
            SELECT $1, 'task ' || g, $3,
                   now() - $4 * interval '1 second' + g * interval '1 millisecond'
            FROM generate_series(1, $2) g
            """,
            tenant_id,
            count,
            priority,
            age_seconds,
        )

    async def submit(self, tenant_id: uuid.UUID, text: str, *, priority: int = 0) -> uuid.UUID:
        async with tenant_transaction(self.pool, tenant_id) as conn:
            task, created = await tasks_service.submit_task(
                conn, tenant_id=tenant_id, body=TaskCreate(input=text, priority=priority)
            )
        assert created
        return task.id

    async def task(self, task_id: uuid.UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT *, extract(epoch FROM run_after - now())::float AS wait "
            "FROM tasks WHERE id = $1",
            task_id,
        )
        assert row is not None
        return row

    async def running(self, tenant_id: uuid.UUID) -> int:
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM tasks WHERE tenant_id = $1 AND status = 'running'", tenant_id
        )
        return count

    async def expire_lease(self, task_id: uuid.UUID) -> None:
        """What a worker that died looks like: its lease ran out a moment ago."""
        await self.pool.execute(
            "UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
            task_id,
        )

    async def make_due(self, task_id: uuid.UUID) -> None:
        await self.pool.execute("UPDATE tasks SET run_after = now() WHERE id = $1", task_id)


@pytest.fixture
async def qdb(fresh_database: DatabaseUrls) -> AsyncIterator[QueueDb]:
    await migrate(fresh_database)
    pool = await create_pool(fresh_database.owner, size=4)
    try:
        yield QueueDb(fresh_database, pool)
    finally:
        await pool.close()


async def claim(
    pool: asyncpg.Pool,
    *,
    limit: int = 1,
    worker: str = "worker-1",
    lease_seconds: float = 60.0,
    backoff_seconds: float = 30.0,
    tenant_limit: int = BIG_LIMIT,
) -> queue.Claim:
    return await queue.claim_next_tasks(
        pool,
        worker_id=worker,
        limit=limit,
        lease_seconds=lease_seconds,
        backoff_seconds=backoff_seconds,
        tenant_limit=tenant_limit,
    )


# --- fairness -------------------------------------------------------------------------------


async def test_a_new_tenants_task_is_claimed_next_despite_another_tenants_large_backlog(
    qdb: QueueDb,
) -> None:
    a = await qdb.tenant("Backlog")
    b = await qdb.tenant("Newcomer")
    await qdb.add_tasks(a, 10_000)
    first = await claim(qdb.pool, limit=3)
    assert {row["tenant_id"] for row in first.tasks} == {a}
    assert await qdb.running(a) == 3

    b_task = await qdb.submit(b, "one small job")
    started = time.monotonic()
    nxt = await claim(qdb.pool, limit=1)
    elapsed = time.monotonic() - started

    assert [row["id"] for row in nxt.tasks] == [b_task]
    assert nxt.tasks[0]["status"] == "running"
    assert nxt.tasks[0]["lease_owner"] == "worker-1"
    assert nxt.tasks[0]["attempt"] == 1
    # One probe per tenant, not a scan of the backlog: a claim stays quick (generous bound).
    assert elapsed < 2.0


async def test_with_nothing_running_each_tenants_first_task_comes_before_any_second(
    qdb: QueueDb,
) -> None:
    a = await qdb.tenant("Backlog")
    b = await qdb.tenant("Newcomer")
    await qdb.add_tasks(a, 10_000)
    b_task = await qdb.submit(b, "one small job")

    # Both tenants' next tasks share the first turn; the older one breaks the tie, and B's task
    # comes before A's second one.
    round_of_two = await claim(qdb.pool, limit=2)
    assert sorted(row["tenant_id"] for row in round_of_two.tasks) == sorted([a, b])
    assert b_task in {row["id"] for row in round_of_two.tasks}


async def test_one_at_a_time_with_nothing_running_the_newcomer_is_claimed_within_two_rounds(
    qdb: QueueDb,
) -> None:
    a = await qdb.tenant("Backlog")
    b = await qdb.tenant("Newcomer")
    await qdb.add_tasks(a, 10_000)
    b_task = await qdb.submit(b, "one small job")

    claimed = [(await claim(qdb.pool, limit=1)).tasks for _ in range(3)]
    assert all(len(batch) == 1 for batch in claimed)
    order = [batch[0]["tenant_id"] for batch in claimed]
    # A's oldest task wins the tie on the first turn, then B's, then A again.
    assert order == [a, b, a]
    assert claimed[1][0]["id"] == b_task


async def test_claims_rotate_between_tenants_in_turns(qdb: QueueDb) -> None:
    tenants = [await qdb.tenant(f"Tenant {i}") for i in range(3)]
    for i, tenant in enumerate(tenants):
        await qdb.add_tasks(tenant, 50 * (i + 1), age_seconds=3600 - i)

    sequence = [(await claim(qdb.pool, limit=1)).tasks[0]["tenant_id"] for _ in range(9)]
    for start in range(0, 9, 3):
        assert sorted(sequence[start : start + 3]) == sorted(tenants), sequence

    batch = await claim(qdb.pool, limit=6)
    per_tenant = [sum(row["tenant_id"] == t for row in batch.tasks) for t in tenants]
    assert per_tenant == [2, 2, 2]


async def test_a_tenant_whose_tasks_finish_at_once_does_not_hold_the_queue(qdb: QueueDb) -> None:
    """Served tenants go to the back: with nothing left running, A's older backlog still waits
    its turn behind B's newer task."""
    a = await qdb.tenant("Fast backlog")
    b = await qdb.tenant("Newcomer")
    await qdb.add_tasks(a, 100)
    [first] = (await claim(qdb.pool, limit=1)).tasks
    assert first["tenant_id"] == a
    await qdb.pool.execute("UPDATE tasks SET status = 'succeeded' WHERE id = $1", first["id"])
    b_task = await qdb.submit(b, "one small job")

    [second] = (await claim(qdb.pool, limit=1)).tasks
    assert second["id"] == b_task


async def test_the_turn_counts_follow_every_way_a_task_moves(qdb: QueueDb) -> None:
    a = await qdb.tenant("A")
    b = await qdb.tenant("B")
    await qdb.add_tasks(a, 30)
    await qdb.add_tasks(b, 5)
    await qdb.submit(b, "one more")
    claimed = (await claim(qdb.pool, limit=8)).tasks
    await qdb.expire_lease(claimed[0]["id"])
    await claim(qdb.pool, limit=2)  # requeues the expired one on the way
    await queue.release(qdb.pool, task_ids=[claimed[1]["id"]], worker_id="worker-1")
    await qdb.pool.execute("UPDATE tasks SET status = 'succeeded' WHERE id = $1", claimed[2]["id"])
    async with tenant_transaction(qdb.pool, b) as conn:
        queued_b = await conn.fetchval(
            "SELECT id FROM tasks WHERE tenant_id = $1 AND status = 'queued' LIMIT 1", b
        )
        await tasks_service.cancel_task(conn, tenant_id=b, task_id=queued_b)
    await qdb.pool.execute(
        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE tenant_id = $1 LIMIT 7)", a
    )

    counted = await qdb.pool.fetch("SELECT tenant_id, queued, running FROM queue_turns")
    actual = await qdb.pool.fetch(
        "SELECT tenant_id, count(*) FILTER (WHERE status = 'queued') AS queued,"
        " count(*) FILTER (WHERE status = 'running') AS running"
        " FROM tasks GROUP BY tenant_id"
    )
    assert {tuple(row) for row in counted} == {tuple(row) for row in actual}


async def test_runs_of_one_tenant_ending_together_do_not_wait_for_each_other(
    qdb: QueueDb,
) -> None:
    """Each ending moves its tenant's turn counts at its commit, not at its status change: the
    other endings of the tenant need not wait for a transaction still storing the rest."""
    a = await qdb.tenant("A")
    await qdb.add_tasks(a, 2)
    first, second = (await claim(qdb.pool, limit=2)).tasks
    end = "UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id = $1"
    async with qdb.pool.acquire() as slow, qdb.pool.acquire() as quick:
        async with slow.transaction():
            await slow.execute(end, first["id"])  # and then more round trips, still open
            async with quick.transaction():
                await asyncio.wait_for(quick.execute(end, second["id"]), 2.0)
    turns = await qdb.pool.fetchrow(
        "SELECT queued, running FROM queue_turns WHERE tenant_id = $1", a
    )
    assert (turns["queued"], turns["running"]) == (0, 0)


async def test_each_claimed_task_gets_its_task_started_event_with_the_claim(qdb: QueueDb) -> None:
    a = await qdb.tenant("Started")
    b = await qdb.tenant("Also started")
    first, second = await qdb.submit(a, "one"), await qdb.submit(b, "two")
    await qdb.submit(a, "not claimed yet")

    claimed = await claim(qdb.pool, limit=2)

    assert {task["id"] for task in claimed.tasks} == {first, second}
    started = await qdb.pool.fetch(
        "SELECT tenant_id, data->>'task_id' AS task_id, data->>'status' AS status FROM outbox"
        " WHERE event_type = 'task.started' ORDER BY data->>'task_id'"
    )
    assert [(row["tenant_id"], row["task_id"], row["status"]) for row in started] == sorted(
        [(a, str(first), "running"), (b, str(second), "running")], key=lambda row: row[1]
    )


# --- per-tenant limits ----------------------------------------------------------------------


async def test_running_limits_hold_with_five_concurrent_claimers(qdb: QueueDb) -> None:
    capped = await qdb.tenant("Capped", max_running=2)  # the tenant's own limit
    default = await qdb.tenant("Default")  # falls back to the tenant_limit parameter
    await qdb.add_tasks(capped, 40)
    await qdb.add_tasks(default, 40)
    limits = {capped: 2, default: 3}
    pools = [await create_pool(qdb.urls.owner, size=1) for _ in range(5)]
    highest = {capped: 0, default: 0}

    async def running_now() -> dict[uuid.UUID, int]:
        rows = await qdb.pool.fetch(
            "SELECT tenant_id, count(*)::int AS n FROM tasks WHERE status = 'running' "
            "GROUP BY tenant_id"
        )
        return {row["tenant_id"]: row["n"] for row in rows}

    async def claimer(index: int, pool: asyncpg.Pool) -> list[asyncpg.Record]:
        return (await claim(pool, limit=4, worker=f"claimer-{index}", tenant_limit=3)).tasks

    finished = 0
    deadline = time.monotonic() + 30
    try:
        while finished < 80:
            assert time.monotonic() < deadline, "the claimers did not drain the queue in time"
            # Five claimers go at the same moment, then whatever they got runs and finishes.
            batches = await asyncio.gather(*(claimer(i, p) for i, p in enumerate(pools)))
            for tenant, running in (await running_now()).items():
                assert running <= limits[tenant], (tenant, running)
                highest[tenant] = max(highest[tenant], running)
            claimed = [row["id"] for batch in batches for row in batch]
            assert len(claimed) == len(set(claimed)), "a task was claimed twice"
            await qdb.pool.execute(
                "UPDATE tasks SET status = 'succeeded', lease_owner = NULL, "
                "lease_expires_at = NULL, finished_at = now() WHERE id = ANY($1::uuid[])",
                claimed,
            )
            finished += len(claimed)
    finally:
        for pool in pools:
            await pool.close()

    assert finished == 80
    rows = await qdb.pool.fetch("SELECT status, attempt FROM tasks")
    assert {(row["status"], row["attempt"]) for row in rows} == {("succeeded", 1)}
    # The limits were reached, so the checks above had something to hold back.
    assert highest == limits


async def test_a_claim_takes_no_more_than_the_free_places(qdb: QueueDb) -> None:
    a = await qdb.tenant("Capped", max_running=2)
    await qdb.add_tasks(a, 10)
    assert len((await claim(qdb.pool, limit=10)).tasks) == 2
    assert (await claim(qdb.pool, limit=10)).tasks == []
    assert await qdb.running(a) == 2


# --- priority -------------------------------------------------------------------------------


async def test_within_a_tenant_higher_priority_first_then_oldest_first(qdb: QueueDb) -> None:
    a = await qdb.tenant("Prioritised")
    ids = {}
    for name, priority in [("old low", 0), ("old high", 9), ("mid", 5), ("new high", 9)]:
        ids[name] = await qdb.submit(a, name, priority=priority)
        await qdb.pool.execute(
            "UPDATE tasks SET created_at = now() - $2 * interval '1 minute' WHERE id = $1",
            ids[name],
            10 - len(ids),
        )
    order = [(await claim(qdb.pool, limit=1)).tasks[0]["input"] for _ in range(4)]
    assert order == ["old high", "new high", "mid", "old low"]


# --- leases ---------------------------------------------------------------------------------


async def test_a_dead_workers_task_is_requeued_with_backoff_then_fails_as_worker_lost(
    qdb: QueueDb,
) -> None:
    a = await qdb.tenant("Unlucky")
    task_id = await qdb.submit(a, "crashes its worker")

    for attempt in (1, 2):
        got = await claim(qdb.pool, worker=f"doomed-{attempt}")
        assert [row["id"] for row in got.tasks] == [task_id]
        assert got.tasks[0]["attempt"] == attempt
        await qdb.expire_lease(task_id)

        found = await claim(qdb.pool, worker="survivor", backoff_seconds=30)
        assert [row["id"] for row in found.expired] == [task_id]
        assert found.tasks == []  # not due again before its backoff
        row = await qdb.task(task_id)
        assert row["status"] == "queued"
        assert row["attempt"] == attempt
        assert row["lease_owner"] is None and row["lease_expires_at"] is None
        backoff = 30 * 2 ** (attempt - 1)
        assert backoff - 10 < row["wait"] <= backoff, row["wait"]
        assert row["error"] is None and row["finished_at"] is None
        await qdb.make_due(task_id)

    last = await claim(qdb.pool, worker="doomed-3")
    assert last.tasks[0]["attempt"] == 3 == last.tasks[0]["max_attempts"]
    await qdb.expire_lease(task_id)
    found = await claim(qdb.pool, worker="survivor")
    assert [row["id"] for row in found.expired] == [task_id]
    row = await qdb.task(task_id)
    assert row["status"] == "failed"
    assert row["error"]["code"] == "worker_lost"
    assert row["attempt"] == 3
    assert row["finished_at"] is not None
    assert row["lease_owner"] is None
    await qdb.make_due(task_id)
    assert (await claim(qdb.pool, worker="survivor")).tasks == []


async def test_a_lease_that_is_not_renewed_runs_out_on_its_own(qdb: QueueDb) -> None:
    a = await qdb.tenant("Short lease")
    task_id = await qdb.submit(a, "short lease")
    got = await claim(qdb.pool, worker="doomed", lease_seconds=0.5)
    assert [row["id"] for row in got.tasks] == [task_id]
    assert (await claim(qdb.pool, worker="survivor")).expired == []  # still leased

    deadline = time.monotonic() + 15
    while not (found := await claim(qdb.pool, worker="survivor", backoff_seconds=0.01)).expired:
        assert time.monotonic() < deadline, "the lease never ran out"
        await asyncio.sleep(0.05)
    assert [row["id"] for row in found.expired] == [task_id]
    deadline = time.monotonic() + 15
    while not (again := await claim(qdb.pool, worker="survivor")).tasks:
        assert time.monotonic() < deadline, "the requeued task was never claimed again"
        await asyncio.sleep(0.05)
    assert again.tasks[0]["id"] == task_id
    assert again.tasks[0]["attempt"] == 2
    assert again.tasks[0]["lease_owner"] == "survivor"


async def test_backoff_is_capped_at_five_minutes(qdb: QueueDb) -> None:
    a = await qdb.tenant("Persistent")
    task_id = await qdb.submit(a, "many attempts")
    await qdb.pool.execute("UPDATE tasks SET max_attempts = 9, attempt = 7 WHERE id = $1", task_id)
    await claim(qdb.pool, worker="doomed")
    await qdb.expire_lease(task_id)
    await claim(qdb.pool, worker="survivor", backoff_seconds=10)  # 10 * 2**7 = 1280 s uncapped
    row = await qdb.task(task_id)
    assert row["status"] == "queued" and row["attempt"] == 8
    assert 290 < row["wait"] <= 300


async def test_a_cancel_requested_task_whose_worker_died_ends_cancelled(qdb: QueueDb) -> None:
    a = await qdb.tenant("Canceller")
    task_id = await qdb.submit(a, "to be cancelled")
    await claim(qdb.pool, worker="doomed")
    async with tenant_transaction(qdb.pool, a) as conn:
        task, event = await tasks_service.cancel_task(conn, tenant_id=a, task_id=task_id)
    assert event is None and task.status == "running"  # a running task is only asked to stop
    await qdb.expire_lease(task_id)

    found = await claim(qdb.pool, worker="survivor")
    assert [row["id"] for row in found.expired] == [task_id]
    row = await qdb.task(task_id)
    assert row["status"] == "cancelled"
    assert row["error"] is None
    assert row["finished_at"] is not None
    assert row["attempt"] == 1
    await qdb.make_due(task_id)
    assert (await claim(qdb.pool, worker="survivor")).tasks == []


async def test_renewing_leases_covers_only_the_workers_own_tasks_and_reports_cancels(
    qdb: QueueDb,
) -> None:
    a = await qdb.tenant("Renewer")
    mine = [await qdb.submit(a, f"mine {i}") for i in range(2)]
    theirs = await qdb.submit(a, "theirs")
    await claim(qdb.pool, worker="me", limit=2, lease_seconds=5)
    await claim(qdb.pool, worker="other", limit=1, lease_seconds=5)
    assert {(await qdb.task(t))["lease_owner"] for t in mine} == {"me"}
    assert (await qdb.task(theirs))["lease_owner"] == "other"
    await qdb.pool.execute("UPDATE tasks SET cancel_requested = true WHERE id = $1", mine[1])
    before = {t: (await qdb.task(t))["lease_expires_at"] for t in [*mine, theirs]}

    renewed = await queue.renew_leases(
        qdb.pool, task_ids=[*mine, theirs, uuid.uuid4()], worker_id="me", lease_seconds=600
    )

    assert renewed == {mine[0]: False, mine[1]: True}
    for t in mine:
        assert (await qdb.task(t))["lease_expires_at"] > before[t]
    assert (await qdb.task(theirs))["lease_expires_at"] == before[theirs]

    # A task taken away (its lease ran out and it was requeued) is no longer renewed.
    await qdb.expire_lease(mine[0])
    await claim(qdb.pool, worker="other", limit=0)
    renewed = await queue.renew_leases(qdb.pool, task_ids=mine, worker_id="me", lease_seconds=600)
    assert renewed == {mine[1]: True}
    assert (await qdb.task(mine[0]))["status"] == "queued"


async def test_released_tasks_go_back_to_the_queue_without_using_an_attempt(
    qdb: QueueDb,
) -> None:
    a = await qdb.tenant("Releaser")
    task_id = await qdb.submit(a, "handed back")
    other_id = await qdb.submit(a, "kept by another")
    await claim(qdb.pool, worker="stopping")
    await claim(qdb.pool, worker="other")
    claimed = await qdb.task(task_id)
    assert claimed["lease_owner"] == "stopping" and claimed["attempt"] == 1

    await queue.release(qdb.pool, task_ids=[task_id, other_id], worker_id="stopping")

    row = await qdb.task(task_id)
    assert row["status"] == "queued"
    assert row["attempt"] == 0
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert row["wait"] <= 0  # due again at once
    other = await qdb.task(other_id)
    assert other["status"] == "running" and other["lease_owner"] == "other"

    again = await claim(qdb.pool, worker="next")
    assert [r["id"] for r in again.tasks] == [task_id]
    assert again.tasks[0]["attempt"] == 1
