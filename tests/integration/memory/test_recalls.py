"""A run's recalls are counted in its worker and written in one statement every few seconds
(``opshub.memory.recalls``): the recall itself writes nothing, and what a reader sees after the
write is every recall, counted."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from opshub.db.engine import DatabaseUrls, create_pool
from opshub.memory.recalls import RecallTally
from opshub.memory.run_memory import TenantMemory
from opshub.memory.schemas import MemoryCreate
from tests.conftest import TenantHandle

NOTE = "Acme Outdoor's spring budget for search ads is 4,000 euros a month."
QUESTION = "What is Acme Outdoor's search ads budget?"


async def recalled(owner_pool: asyncpg.Pool, memory_id: uuid.UUID) -> tuple[int, object]:
    row = await owner_pool.fetchrow(
        "SELECT recall_count, last_recalled_at FROM memories WHERE id = $1", memory_id
    )
    assert row is not None
    return row["recall_count"], row["last_recalled_at"]


async def stored(memory: TenantMemory, content: str) -> uuid.UUID:
    [saved] = await memory.remember([MemoryCreate(content=content)])
    return saved.memory.id


async def test_a_runs_recalls_are_written_counted_once_flushed(  # type: ignore[no-untyped-def]
    memory_of, owner_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    tally = RecallTally(owner_pool=owner_pool)
    ours = memory_of(tenant_a)
    theirs = memory_of(tenant_b)
    our_note = await stored(ours, NOTE)
    their_note = await stored(theirs, NOTE)
    counting = [
        TenantMemory(app_pool=m.app_pool, tenant_id=m.tenant_id, embedders=m.embedders,
                     recalls=tally)
        for m in (ours, theirs)
    ]  # fmt: skip
    for _ in range(3):
        [hit] = await counting[0].search(QUESTION, limit=1)
        assert hit.id == our_note
    [hit] = await counting[1].search(QUESTION, limit=1)
    assert hit.id == their_note

    assert await recalled(owner_pool, our_note) == (0, None)
    assert tally.pending == 2
    await tally.flush()

    count, last = await recalled(owner_pool, our_note)
    assert count == 3 and last is not None
    assert (await recalled(owner_pool, their_note))[0] == 1
    assert tally.pending == 0
    await tally.flush()  # nothing new: nothing counted twice
    assert (await recalled(owner_pool, our_note))[0] == 3


async def test_a_stopping_worker_writes_the_recalls_it_counted(  # type: ignore[no-untyped-def]
    memory_of, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    tally = RecallTally(owner_pool=owner_pool, interval_seconds=3600)
    memory = memory_of(tenant_a)
    note = await stored(memory, NOTE)
    loop = asyncio.create_task(tally.run())
    tally.add(tenant_id=tenant_a.id, memory_ids=[note, note])
    await asyncio.sleep(0)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert (await recalled(owner_pool, note))[0] == 2


async def test_recalls_whose_write_lost_its_connection_are_written_by_the_next(  # type: ignore[no-untyped-def]
    memory_of, owner_pool: asyncpg.Pool, urls: DatabaseUrls, tenant_a: TenantHandle
) -> None:
    note = await stored(memory_of(tenant_a), NOTE)
    own_pool = await create_pool(urls.owner, size=1)
    try:
        tally = RecallTally(owner_pool=own_pool)
        tally.add(tenant_id=tenant_a.id, memory_ids=[note, note])
        async with owner_pool.acquire() as blocker:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE memories IN ACCESS EXCLUSIVE MODE")
                writing = asyncio.create_task(tally.flush())
                writer_pid = None
                while writer_pid is None:
                    await asyncio.sleep(0.02)
                    writer_pid = await owner_pool.fetchval(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE 'UPDATE memories m%'"
                    )
                await owner_pool.execute("SELECT pg_terminate_backend($1)", writer_pid)
                with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                    await writing
        tally.add(tenant_id=tenant_a.id, memory_ids=[note])
        assert tally.pending == 1
        await tally.flush()
    finally:
        await own_pool.close()
    assert (await recalled(owner_pool, note))[0] == 3
