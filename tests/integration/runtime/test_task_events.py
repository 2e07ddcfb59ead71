"""A run's events, emitted from CrewAI's threads, stored by one writer on the worker's loop
(``opshub.runtime.task_events``): every event, once, in its run's order, however many threads
emit at once. A thread wakes the writer only when no wake-up of its is on its way already."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import asyncpg
from sqlalchemy import make_url

from opshub.db.engine import DatabaseUrls, create_pool
from opshub.loops import stop_all
from opshub.runtime.live import LocalLiveEvents
from opshub.runtime.task_events import TaskEventWriter
from tests.conftest import TenantHandle

THREADS = 8
EVENTS = 400


async def started_task(owner_pool: asyncpg.Pool, tenant: TenantHandle) -> uuid.UUID:
    task_id: uuid.UUID = await owner_pool.fetchval(
        "INSERT INTO tasks (tenant_id, crew, input, status, started_at) VALUES"
        " ($1, 'assistant', 'Count to four hundred', 'running', now()) RETURNING id",
        tenant.id,
    )
    return task_id


async def stored(owner_pool: asyncpg.Pool, task_ids: list[uuid.UUID]) -> int:
    count: int = await owner_pool.fetchval(
        "SELECT count(*) FROM task_events WHERE task_id = ANY($1)", task_ids
    )
    return count


async def test_events_emitted_from_many_threads_at_once_are_all_stored_in_order(
    owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    writer = TaskEventWriter(pool=owner_pool, live=LocalLiveEvents())
    writing = asyncio.create_task(writer.run())
    task_ids = [await started_task(owner_pool, tenant_a) for _ in range(THREADS)]
    runs = [writer.open_run(tenant_id=tenant_a.id, task_id=t, last_seq=0) for t in task_ids]
    go = threading.Barrier(THREADS)

    def emit_all(n: int) -> None:
        go.wait()
        for step in range(EVENTS):
            runs[n].emit("agent.step", text=f"step {step}")
            if step % 20 == 0:
                time.sleep(0.002)  # a crew's steps come over time, not all at once

    threads = [threading.Thread(target=emit_all, args=(n,)) for n in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join, 30)
        # Not flushed: stored because the threads woke the writer, as a live stream needs.
        for _ in range(200):
            if await stored(owner_pool, task_ids) == THREADS * EVENTS:
                break
            await asyncio.sleep(0.05)
        assert await stored(owner_pool, task_ids) == THREADS * EVENTS
    finally:
        await stop_all([writing])
    rows = await owner_pool.fetch(
        "SELECT task_id, seq, data->>'text' AS text FROM task_events WHERE task_id = ANY($1)"
        " ORDER BY task_id, seq",
        task_ids,
    )
    by_task: dict[uuid.UUID, list[str]] = {}
    for row in rows:
        by_task.setdefault(row["task_id"], []).append(row["text"])
    assert by_task == {t: [f"step {s}" for s in range(EVENTS)] for t in task_ids}


async def test_a_writer_refused_connections_keeps_its_events_and_stores_them_later(
    owner_pool: asyncpg.Pool, urls: DatabaseUrls, tenant_a: TenantHandle
) -> None:
    """PostgreSQL out of connections (``too many clients``) refuses the writer's next one: the
    writer waits it out with the batch in hand. It used to stop for good, and every run's
    ending then waited for its events forever."""
    role = f"opshub_events_{uuid.uuid4().hex[:8]}"
    await owner_pool.execute(f"CREATE ROLE {role} LOGIN BYPASSRLS CONNECTION LIMIT 1")
    await owner_pool.execute(f"GRANT SELECT, INSERT ON task_events TO {role}")
    pool = await create_pool(
        make_url(urls.owner).set(username=role).render_as_string(False), size=2
    )
    writer = TaskEventWriter(pool=pool, live=LocalLiveEvents())
    writing = asyncio.create_task(writer.run())
    held = await pool.acquire()  # the role's one connection: the writer's next is refused
    try:
        task_id = await started_task(owner_pool, tenant_a)
        events = writer.open_run(tenant_id=tenant_a.id, task_id=task_id, last_seq=0)
        events.emit("task.started", crew="assistant", attempt=1)
        flushed = asyncio.create_task(events.flush())
        await asyncio.sleep(1.5)  # refused three times meanwhile
        assert not flushed.done() and not writing.done()
        await pool.release(held)
        await asyncio.wait_for(flushed, 10)
        assert await stored(owner_pool, [task_id]) == 1
    finally:
        await stop_all([writing])
        await pool.expire_connections()
        pool.terminate()
        await owner_pool.execute(f"DROP OWNED BY {role}")
        await owner_pool.execute(f"DROP ROLE {role}")
