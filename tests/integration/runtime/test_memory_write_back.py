"""A run's memories, written after its task has ended (``opshub.runtime.memory_write_back``).

Its transaction waits for the tenant's memory lock (one writer per tenant) before it writes
anything: a transaction that has written holds back every tenant's ``/v1/events`` until it
ends, since a row shows there only once no older transaction is open.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from opshub.config import Settings
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import open_secret_store
from opshub.db.engine import DatabaseUrls, create_pool, tenant_transaction
from opshub.memory.embedders import LOCAL_MODEL, Embedders
from opshub.memory.indexes import IndexBuilder
from opshub.memory.run_memory import TenantMemory, memories_of_run
from opshub.outbox import service as outbox
from opshub.runtime.memory_write_back import MemoryWriteBack
from tests.conftest import TenantHandle

HOLDER = "write-back-test-worker"


async def ended_task(
    owner_pool: asyncpg.Pool, tenant: TenantHandle, holder: str = HOLDER
) -> asyncpg.Record:
    """A task that has succeeded and whose memories are still to be written, under the lease
    of ``holder`` (far in the future: no heartbeat of the session adopts it)."""
    row = await owner_pool.fetchrow(
        "INSERT INTO tasks (tenant_id, crew, input, status, attempt, max_attempts, started_at,"
        " finished_at, result, memory_pending, lease_owner, lease_expires_at) VALUES ($1,"
        " 'assistant', 'Which leads came in this week?', 'succeeded', 1, 3, now(), now(),"
        " to_jsonb('Three leads.'::text), true, $2, now() + interval '1 hour') RETURNING *",
        tenant.id,
        holder,
    )
    assert row is not None
    return row


def tenant_memory(
    app_pool: asyncpg.Pool,
    settings: Settings,
    tenant: TenantHandle,
    *,
    index_builder: IndexBuilder | None = None,
) -> TenantMemory:
    """The tenant's memory as a worker's run binds it (the local embedding model)."""
    resolver = CredentialResolver(
        pool=app_pool, store=open_secret_store(settings), settings=settings
    )
    return TenantMemory(
        app_pool=app_pool,
        tenant_id=tenant.id,
        embedders=Embedders(resolver=resolver, settings=settings).for_run(),
        index_builder=index_builder,
    )


async def waiting_for_a_lock(owner_pool: asyncpg.Pool, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        waiting = await owner_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the write-back never waited for the tenant's memory lock")


async def test_a_write_back_waiting_for_its_tenants_lock_holds_back_no_events(
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    settings: Settings,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    row = await ended_task(owner_pool, tenant_a)
    memory = tenant_memory(app_pool, settings, tenant_a)
    write_back = MemoryWriteBack(owner_pool=owner_pool, worker_id=HOLDER, lease_seconds=60)
    async with owner_pool.acquire() as other_writer, other_writer.transaction():
        # Another write-back of tenant A, under way (it takes the lock before writing too).
        await other_writer.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('opshub.memory:' || $1::text, 0))",
            str(tenant_a.id),
        )
        writing = asyncio.create_task(
            write_back.write(
                row, crew="assistant", answer="Three leads.", memory=memory, llm=None, meter=None
            )
        )
        await waiting_for_a_lock(owner_pool)
        async with tenant_transaction(app_pool, tenant_b.id) as conn:
            await outbox.emit(conn, tenant_id=tenant_b.id, event_type="task.queued", data={})
        async with tenant_transaction(app_pool, tenant_b.id) as conn:
            seen = await outbox.events_after(conn, tenant_id=tenant_b.id, after=0)
        assert [event.type for event in seen.events] == ["task.queued"]
        assert not writing.done()

    saved = await asyncio.wait_for(writing, 30)
    assert [s.outcome for s in saved] == ["created"]
    pending = await owner_pool.fetchval(
        "SELECT memory_pending FROM tasks WHERE id = $1", uuid.UUID(str(row["id"]))
    )
    assert pending is False


async def test_a_runs_memories_are_picked_with_the_model_that_will_embed_them(
    app_pool: asyncpg.Pool, settings: Settings, tenant_a: TenantHandle
) -> None:
    """One read of the tenant's memory settings gives the extraction switch and the embedding
    model: the write-back embeds with it before its storing transaction, without reading the
    model again in a transaction of its own."""
    memory = tenant_memory(app_pool, settings, tenant_a)

    picked = await memories_of_run(
        memory,
        task_id=uuid.uuid4(),
        crew="assistant",
        thread_id=None,
        request="Which leads came in this week?",
        answer="Three leads.",
        llm=None,
    )

    assert picked.embedding_model == LOCAL_MODEL
    assert [item.kind for item in picked.items] == ["outcome"]


async def test_a_write_back_another_worker_took_over_stores_nothing(
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    settings: Settings,
    tenant_a: TenantHandle,
) -> None:
    """This worker was presumed dead and another holds the task's lease now (and writes its
    memories): what this one stored in its transaction goes with it, usage included."""
    row = await ended_task(owner_pool, tenant_a, holder="the-worker-that-took-over")
    memory = tenant_memory(app_pool, settings, tenant_a)
    write_back = MemoryWriteBack(owner_pool=owner_pool, worker_id=HOLDER, lease_seconds=60)

    saved = await write_back.write(
        row, crew="assistant", answer="Three leads.", memory=memory, llm=None, meter=None
    )

    assert saved == []
    stored = await owner_pool.fetchval(
        "SELECT count(*) FROM memories WHERE tenant_id = $1", tenant_a.id
    )
    task = await owner_pool.fetchrow(
        "SELECT memory_pending, lease_owner FROM tasks WHERE id = $1", row["id"]
    )
    assert stored == 0
    assert task is not None and tuple(task) == (True, "the-worker-that-took-over")


async def test_a_write_back_writes_last_and_in_as_few_statements_as_it_can(
    owner_pool: asyncpg.Pool, settings: Settings, urls: DatabaseUrls, tenant_a: TenantHandle
) -> None:
    """What a transaction has written holds back every tenant's ``/v1/events`` until it ends:
    the write-back reads first (the model, the duplicates, whether the tenant's index is due)
    and then writes the memory, and the task's mark with the usage in one statement."""
    row = await ended_task(owner_pool, tenant_a)
    statements: list[str] = []
    app = await create_pool(urls.app, size=1, transactions_only=True)
    try:
        builder = IndexBuilder(owner_pool=owner_pool, threshold=1_000)
        memory = tenant_memory(app, settings, tenant_a, index_builder=builder)
        write_back = MemoryWriteBack(owner_pool=owner_pool, worker_id=HOLDER, lease_seconds=60)
        # The connection's first use looks up the statements' types (asyncpg's introspection).
        await write_back.write(
            await ended_task(owner_pool, tenant_a),
            crew="assistant",
            answer="Two leads.",
            memory=memory,
            llm=None,
            meter=None,
        )
        async with app.acquire() as conn:
            conn.add_query_logger(lambda logged: statements.append(logged.query))
        saved = await write_back.write(
            row, crew="assistant", answer="Three leads.", memory=memory, llm=None, meter=None
        )
    finally:
        await app.close()

    assert [s.outcome for s in saved] == ["created"]
    first_write = next(
        n for n, text in enumerate(statements) if text.startswith("INSERT INTO memories")
    )
    marked, commit = statements[first_write + 1 :]
    assert marked.startswith("WITH written AS (")
    assert commit == "COMMIT;"
