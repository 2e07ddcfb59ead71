"""What a hub's processes share without Redis, through PostgreSQL NOTIFY (``opshub.db.bus``):
two buses on one database stand for two processes.

Covered: live task events of any size reach the other process's watchers in order (a batch
larger than one message is split; an event larger than a message sends its watchers to the
stored events); login attempts made at either process count against one limit; a process whose
listener is cut off wakes its watchers, and hears again once it is back; a process that only
schedules holds no listener.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from opshub.auth.ratelimit import LoginRateLimiter, SharedAttemptCounter
from opshub.config import Settings
from opshub.db.bus import PgBus
from opshub.db.engine import DatabaseUrls, create_pool, dsn
from opshub.errors import RateLimitedError
from opshub.runtime.live import PgLiveEvents


@pytest.fixture
async def buses(fresh_database: DatabaseUrls) -> AsyncIterator[tuple[PgBus, PgBus]]:
    """Two buses on one database, each with a pool of its own: two processes. A bus takes its
    subscribers before it starts: subscribe, then ``start``."""
    pools = [await create_pool(fresh_database.owner, size=2) for _ in range(2)]
    pair = [PgBus(url=fresh_database.owner, pool=pool) for pool in pools]
    try:
        yield pair[0], pair[1]
    finally:
        for bus in pair:
            await bus.close()
        for pool in pools:
            await pool.close()


async def start(buses: tuple[PgBus, PgBus]) -> None:
    for bus in buses:
        await bus.start()


def event(seq: int, size: int = 100) -> dict[str, Any]:
    return {"seq": seq, "type": "agent.token", "data": {"text": "x" * size}}


async def batches_until(queue: asyncio.Queue[list[dict[str, Any]]], count: int) -> list[Any]:
    got: list[Any] = []
    while len(got) < count:
        got.append(await asyncio.wait_for(queue.get(), 10))
    return got


async def test_live_events_reach_the_other_process_whole_and_in_order(
    buses: tuple[PgBus, PgBus],
) -> None:
    runner, watcher = PgLiveEvents(buses[0]), PgLiveEvents(buses[1])
    await start(buses)
    task_id = uuid.uuid4()
    async with watcher.watch(task_id) as queue:
        # 60 events of ~600 bytes: more than one NOTIFY holds (8,000 bytes).
        await runner.publish({task_id: [event(seq, 500) for seq in range(1, 61)]})
        got = await batches_until(queue, 1)
        while sum(map(len, got)) < 60:
            got += await batches_until(queue, 1)
        assert len(got) > 1
        assert [e["seq"] for batch in got for e in batch] == list(range(1, 61))

        # Too large for any message: its watchers get an empty batch and read it stored.
        await runner.publish({task_id: [event(61, 20_000), event(62)]})
        assert [[e["seq"] for e in batch] for batch in await batches_until(queue, 2)] == [
            [],
            [62],
        ]
        assert queue.empty()  # the runner's own process was not sent its events twice


async def test_login_attempts_at_either_process_count_against_one_limit(
    buses: tuple[PgBus, PgBus],
) -> None:
    limiters = [
        LoginRateLimiter(SharedAttemptCounter(bus), per_minute=3, per_address=100) for bus in buses
    ]
    await start(buses)
    await limiters[0].check("owner@example.com")
    await limiters[0].check("owner@example.com")
    await limiters[0].check("other@example.com")

    async def third_heard() -> None:
        while True:
            try:
                await limiters[1].check("owner@example.com")
            except RateLimitedError:
                return
            await asyncio.sleep(0.01)  # each try counts too: the limit is reached anyway

    await asyncio.wait_for(third_heard(), 10)
    with pytest.raises(RateLimitedError):
        await limiters[0].check("owner@example.com")
    await limiters[1].check("another@example.com")


async def test_a_lost_listener_wakes_its_watchers_and_listens_again(
    buses: tuple[PgBus, PgBus], fresh_database: DatabaseUrls
) -> None:
    runner, watcher = PgLiveEvents(buses[0]), PgLiveEvents(buses[1])
    await start(buses)
    task_id = uuid.uuid4()
    async with watcher.watch(task_id) as queue:
        killer = await asyncpg.connect(dsn(fresh_database.owner))
        try:
            await killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'opshub-listener' AND pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()
        assert await asyncio.wait_for(queue.get(), 10) == []  # woken: read the database
        woken_again = await asyncio.wait_for(queue.get(), 10)  # listening again
        assert woken_again == []
        assert not watcher.polling()
        await runner.publish({task_id: [event(1)]})
        assert [e["seq"] for e in await asyncio.wait_for(queue.get(), 10)] == [1]


async def test_only_a_process_that_hears_the_others_holds_a_listener(
    fresh_database: DatabaseUrls, tmp_path: Path
) -> None:
    from opshub.app import Hub

    settings = Settings(data_dir=tmp_path, redis_url=None)
    urls = DatabaseUrls(owner=fresh_database.owner, app=fresh_database.owner)  # no tenants here
    # `opshub scheduler` hears nothing from the other processes; the API and workers do.
    killer = await asyncpg.connect(dsn(fresh_database.owner))
    try:
        began = await killer.fetchval("SELECT clock_timestamp()")
    finally:
        await killer.close()
    scheduler = await Hub.open(settings, urls, app_pool_size=1, owner_pool_size=2, listen=False)
    worker = await Hub.open(settings, urls, app_pool_size=1, owner_pool_size=2)
    try:
        # Listeners of this test's hubs only: an earlier test's process may still be listening.
        listeners = await worker.owner_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'opshub-listener' AND backend_start >= $1",
            began,
        )
        assert scheduler.bus is not None and worker.bus is not None
        assert (scheduler.bus.listening, worker.bus.listening) == (False, True)
        assert listeners == 1
    finally:
        await scheduler.close()
        await worker.close()
