"""Per-tenant partial HNSW indexes: exact recall for every tenant size.

A tenant filter on a shared HNSW index is applied after the index has picked its candidates, so a
large tenant's query returns its share of a global top-``ef_search`` and recall collapses
(pgvector 0.6 has no iterative scans). Instead, a tenant is searched exactly (a sort of its own
rows) until it holds ``threshold`` live memories of a model; then it gets its own partial index,
built CONCURRENTLY so writes go on, and recorded in ``memory_indexes`` once it is valid.

``memories`` is hash-partitioned by tenant (migration 0019), and the index is built on the
tenant's partition: a CONCURRENTLY build scans its table twice, and a partition is 1/64 of the
rows, so a build's cost follows the tenant's partition, not every tenant's memories together.

``ef_construction`` 200, not pgvector's 64: on clustered memories the default graph leaves ~2% of
a large tenant's rows unreachable, which no ``ef_search`` at query time recovers (bench/memory.py:
recall@10 0.981 → 0.9998 for the largest tenants, builds ~1.5x as long, queries as fast).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import uuid
from pathlib import Path

import asyncpg
import structlog

from opshub.db.engine import note_session_lock, set_tenant
from opshub.db.sql import Connection, Query, load_queries
from opshub.memory.embedders import MODELS

log = structlog.get_logger(__name__)

QUERIES = load_queries(Path(__file__).with_name("indexes.sql"))
PREFIX = "ix_memories_hnsw_"


def index_name(tenant_id: uuid.UUID, model: str) -> str:
    return f"{PREFIX}{tenant_id.hex}_{hashlib.sha256(model.encode()).hexdigest()[:6]}"


def tenant_predicate(tenant_id: uuid.UUID, model: str) -> str:
    """The index's WHERE clause; a query uses the index only if it repeats it word for word.

    Literals, not parameters: a generic plan cannot prove a parameter matches a partial index.
    Both are checked values (a UUID and a known model name), never user text.
    """
    if model not in MODELS:
        raise ValueError(f"unknown embedding model {model!r}")
    return (
        f"tenant_id = '{uuid.UUID(str(tenant_id))}'::uuid AND embedding_model = '{model}' "
        "AND superseded_by IS NULL"
    )


@functools.lru_cache(maxsize=4096)
def nearest_indexed(tenant_id: uuid.UUID, model: str, ef_search: int) -> Query:
    """The statement that searches the tenant's own index (filled once per tenant and width)."""
    return QUERIES["nearest_indexed"].fill(
        predicate=tenant_predicate(tenant_id, model), ef_search=str(int(ef_search))
    )


async def search_index(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    model: str,
    ef_search: int,
    vector: str,
    scopes: list[str] | None,
    kinds: list[str] | None,
    metadata: dict[str, object],
    limit: int,
) -> list[asyncpg.Record]:
    """The closest ``limit`` of the index's top ``ef_search`` that pass the filters."""
    await QUERIES["set_ef_search"].execute(conn, ef_search=str(ef_search))
    return await nearest_indexed(tenant_id, model, ef_search).fetch(
        conn, vector=vector, scopes=scopes, kinds=kinds, metadata=metadata, limit=limit
    )


async def tenant_partition(conn: Connection, tenant_id: uuid.UUID) -> asyncpg.Record:
    """The partition of ``memories`` that holds the tenant's rows (``partition``,
    schema-qualified) and its ``schema``, where the tenant's index lives; both quoted."""
    return await QUERIES["tenant_partition"].fetchone(conn, tenant_id=tenant_id)


async def _try_lock_index(conn: Connection, *, name: str) -> bool:
    """Held by the session until ``unlock_index``."""
    locked = bool(await QUERIES["try_lock_index"].fetchval(conn, name=name))
    if locked:
        note_session_lock(conn)
    return locked


async def build_tenant_index(pool: asyncpg.Pool, *, tenant_id: uuid.UUID, model: str) -> bool:
    """Build the tenant's index unless another process is at it or it exists. Owner pool only."""
    name = index_name(tenant_id, model)
    async with pool.acquire() as conn:
        if not await _try_lock_index(conn, name=name):
            return False
        predicate = tenant_predicate(tenant_id, model)
        try:
            partition = await tenant_partition(conn, tenant_id)
            valid = await QUERIES["index_valid"].fetchval(conn, name=name)
            if valid is False:  # an interrupted CONCURRENTLY build leaves an invalid index
                await QUERIES["drop_index"].fill(name=f"{partition['schema']}.{name}").execute(conn)
            await (
                QUERIES["create_index"]
                .fill(name=name, partition=partition["partition"], predicate=predicate)
                .execute(conn)
            )
            async with conn.transaction():
                await set_tenant(conn, tenant_id)
                rows = await QUERIES["count_indexed"].fill(predicate=predicate).fetchval(conn)
                await QUERIES["register_index"].execute(
                    conn,
                    tenant_id=tenant_id,
                    embedding_model=model,
                    index_name=name,
                    rows_at_build=rows,
                )
        finally:
            await QUERIES["unlock_index"].execute(conn, name=name)
    log.info("memory index built", tenant=str(tenant_id), model=model, rows=rows)
    return True


async def maintain(pool: asyncpg.Pool, *, threshold: int) -> int:
    """Build every index that is due; drop the indexes of erased tenants and old models."""
    async with pool.acquire() as conn:
        due = await QUERIES["find_due"].fetch(conn, threshold=threshold)
        orphans = await QUERIES["find_orphans"].fetch(conn)
    built = 0
    for row in due:
        built += await build_tenant_index(
            pool, tenant_id=row["tenant_id"], model=row["embedding_model"]
        )
    for orphan in orphans:
        async with pool.acquire() as conn:
            # A build in progress holds this lock and has not registered its index yet.
            if await _try_lock_index(conn, name=orphan["relname"]):
                try:
                    await QUERIES["drop_index"].fill(name=orphan["qualified"]).execute(conn)
                finally:
                    await QUERIES["unlock_index"].execute(conn, name=orphan["relname"])
    return built


class IndexBuilder:
    """Builds a tenant's index in the background as soon as a write reaches the threshold."""

    def __init__(self, *, owner_pool: asyncpg.Pool, threshold: int) -> None:
        self._pool = owner_pool
        self.threshold = threshold
        self._building: dict[tuple[uuid.UUID, str], asyncio.Task[None]] = {}

    def request(self, *, tenant_id: uuid.UUID, model: str) -> None:
        key = (tenant_id, model)
        if key not in self._building:
            self._building[key] = asyncio.create_task(self._build(tenant_id, model))

    async def _build(self, tenant_id: uuid.UUID, model: str) -> None:
        try:
            await build_tenant_index(self._pool, tenant_id=tenant_id, model=model)
        except Exception as exc:  # the scheduler's sweep builds it later
            log.warning("memory index build failed", tenant=str(tenant_id), error=str(exc))
        finally:
            self._building.pop((tenant_id, model), None)

    async def wait(self) -> None:
        """Let running builds finish."""
        while self._building:
            await asyncio.gather(*self._building.values(), return_exceptions=True)

    async def stop(self) -> None:
        """At shutdown: a build cut short leaves an invalid index, which the next build drops."""
        builds = list(self._building.values())
        for build in builds:
            build.cancel()
        await asyncio.gather(*builds, return_exceptions=True)
