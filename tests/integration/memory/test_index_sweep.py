"""The scheduler's sweep: builds the index a tenant is due and drops those no tenant owns."""

from __future__ import annotations

import asyncpg

from opshub.db.engine import tenant_transaction, transaction
from opshub.memory.bulk import bulk_insert
from opshub.memory.embedders import LOCAL_MODEL
from opshub.memory.indexes import index_name, maintain
from tests.conftest import TenantHandle
from tests.integration.memory.test_bulk import rows_of, unit_vectors


async def index_exists(pool: asyncpg.Pool, name: str) -> bool:
    async with pool.acquire() as conn:
        return bool(await conn.fetchval("SELECT 1 FROM pg_class WHERE relname = $1", name))


async def test_an_imported_tenant_gets_its_index_and_loses_it_with_the_tenant(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    big: TenantHandle = await make_tenant("Imported Big")
    small: TenantHandle = await make_tenant("Imported Small")
    for tenant, count in ((big, 40), (small, 39)):
        async with tenant_transaction(app_pool, tenant.id) as conn:
            rows = rows_of(unit_vectors(count, seed=count))
            await bulk_insert(conn, tenant_id=tenant.id, model=LOCAL_MODEL, rows=rows)

    await maintain(owner_pool, threshold=40)

    assert await index_exists(owner_pool, index_name(big.id, LOCAL_MODEL))
    assert not await index_exists(owner_pool, index_name(small.id, LOCAL_MODEL))
    # Built on the one partition that holds the tenant's rows: its build scanned that, not the
    # other tenants' memories.
    async with owner_pool.acquire() as conn:
        holders = await conn.fetch(
            "SELECT DISTINCT tableoid::regclass::text FROM memories WHERE tenant_id = $1", big.id
        )
        indexed = await conn.fetchval(
            "SELECT i.indrelid::regclass::text FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1",
            index_name(big.id, LOCAL_MODEL),
        )
    assert [row[0] for row in holders] == [indexed]
    assert indexed.startswith("memory_partitions.memories_p")
    async with tenant_transaction(app_pool, big.id) as conn:
        assert await conn.fetchval("SELECT rows_at_build FROM memory_indexes") == 40

    async with transaction(owner_pool) as conn:
        await conn.execute("DELETE FROM tenants WHERE id = $1", big.id)
    await maintain(owner_pool, threshold=40)

    assert not await index_exists(owner_pool, index_name(big.id, LOCAL_MODEL))
