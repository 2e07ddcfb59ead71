"""A tenant's domain events after a cursor (GET /v1/events, the console's live home): none passed
by, none twice, when transactions commit in another order than they took their ids."""

from __future__ import annotations

import asyncpg

from opshub.db.engine import tenant_transaction
from opshub.outbox import service as outbox
from tests.conftest import TenantHandle


async def emit(conn: asyncpg.Connection, tenant: TenantHandle, event_type: str) -> int:
    event_id: int = await conn.fetchval(
        "INSERT INTO outbox (tenant_id, event_type, data) VALUES ($1, $2, '{}') RETURNING id",
        tenant.id,
        event_type,
    )
    return event_id


async def read_after(app_pool: asyncpg.Pool, tenant: TenantHandle, after: int) -> list[str]:
    async with tenant_transaction(app_pool, tenant.id) as conn:
        events = await outbox.events_after(conn, tenant_id=tenant.id, after=after)
    return [event.type for event in events.events]


async def cursor_of(app_pool: asyncpg.Pool, tenant: TenantHandle, event_type: str) -> int:
    async with tenant_transaction(app_pool, tenant.id) as conn:
        events = await outbox.events_after(conn, tenant_id=tenant.id, after=0)
    return next(event.cursor for event in events.events if event.type == event_type)


async def test_an_event_committed_after_a_higher_id_still_comes_after_the_cursor(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with owner_pool.acquire() as older, owner_pool.acquire() as later:
        older_tx, later_tx = older.transaction(), later.transaction()
        await older_tx.start()
        await older.fetchval("SELECT pg_current_xact_id()")  # a write of its own came first
        await later_tx.start()
        lower = await emit(later, tenant_a, "test.lower_id_committed_last")
        higher = await emit(older, tenant_a, "test.higher_id_committed_first")
        assert lower < higher
        await older_tx.commit()

        assert await read_after(app_pool, tenant_a, 0) == ["test.higher_id_committed_first"]
        cursor = await cursor_of(app_pool, tenant_a, "test.higher_id_committed_first")
        await later_tx.commit()

    assert await read_after(app_pool, tenant_a, cursor) == ["test.lower_id_committed_last"]


async def test_a_stream_started_at_the_latest_cursor_replays_nothing(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with owner_pool.acquire() as older, owner_pool.acquire() as later:
        older_tx = older.transaction()
        await older_tx.start()
        await older.fetchval("SELECT pg_current_xact_id()")
        async with later.transaction():
            await emit(later, tenant_a, "test.lower_id_later_txid")
        await emit(older, tenant_a, "test.higher_id_older_txid")
        await older_tx.commit()

    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        latest = await outbox.latest_cursor(conn, tenant_id=tenant_a.id)
    assert await read_after(app_pool, tenant_a, latest) == []
    async with owner_pool.acquire() as conn:
        await emit(conn, tenant_a, "test.next")
    assert await read_after(app_pool, tenant_a, latest) == ["test.next"]


async def test_a_cursor_that_is_no_event_of_the_tenants_reads_from_the_ids_above_it(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with owner_pool.acquire() as conn:
        first = await emit(conn, tenant_a, "test.first")
        await emit(conn, tenant_a, "test.second")
        await conn.execute("DELETE FROM outbox WHERE id = $1", first)  # a row gone since

    assert await read_after(app_pool, tenant_a, first) == ["test.second"]
    assert await read_after(app_pool, tenant_a, 0) == ["test.second"]
