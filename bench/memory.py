"""Long-term memory at 1M rows: opshub's recall against a shared HNSW index filtered by tenant.

A throw-away embedded PostgreSQL 16 + pgvector 0.6.2 (pgserver, in a temp dir) holds N memories
(default 1M, 384 dimensions) of T tenants (default 1,000) whose sizes follow a power law (Zipf,
size of the r-th largest ~ r^-alpha, alpha 1.2): a few tenants of 10k-200k+ rows, hundreds of at
most 100. The vectors are synthetic and clustered like sentence embeddings of shared subject
matter: 512 topics shared by all tenants; each tenant draws its clusters from them (popular
topics more often) and offsets them a little; a memory is its cluster's centre moved within a
24-dimensional subspace of the topic plus a little isotropic noise, normalised (cosine to its
centre ~0.85, to a neighbour of the same cluster ~0.7, to another tenant's memory of the same
topic ~0.6: tenants talk about the same things). A query is drawn like a memory of the tenant.

- ingest: every row through ``opshub.memory.bulk.bulk_insert`` (binary COPY into a temp table,
  INSERT … ON CONFLICT DO NOTHING under RLS), batches of ``--batch`` rows, one connection;
  rows/s over the calls. Beside it: a plain binary COPY of 50k rows (owner, no RLS, no dedupe)
  into a scratch copy of the table with its indexes, as the ceiling; and 2 x 25k rows through
  bulk_insert for two tenants one after the other, then at once on two connections (rolled
  back).
- opshub: ``opshub.memory.indexes.maintain(threshold=1000)`` builds a partial HNSW index per
  tenant of 1,000+ rows (timed) as opshub does (m 16, ef_construction 200, on the tenant's
  partition);
  ``opshub.memory.service.nearest(limit=10)`` answers, exactly (a sort) below the threshold,
  through the tenant's index above it (ef_search 100; also at ``--opshub-ef``, 200, which callers
  can ask for). Then the same indexes are rebuilt at every other ``--ef-construction`` (pgvector's
  default 64) and measured again at ef_search 100.
- plain: one HNSW index over the whole table (timed; built after opshub is measured, so opshub's
  queries cannot pick it), once per ``--ef-construction`` (64 and 200: like with like), and
  ``WHERE tenant_id = $1 ORDER BY embedding <=> $2 LIMIT 10`` at pgvector's default ef_search
  40, and at 200. Since memories is hash-partitioned by tenant (0019), "one index" is what
  ``CREATE INDEX … ON memories`` makes: one graph per partition, each shared by the tenants
  hashed there, so plain's filter now drops fewer candidates than on one graph of every tenant.
- every index's build options are read back from the catalog (``pg_class.reloptions``) into the
  report, so what it says was built is what was built.
- per tenant-size class (<= 100, <= 10k, > 10k rows; ``--queries`` over up to
  ``--sample-tenants`` tenants spread over the class's sizes on a log scale, all classes
  interleaved in one random order): recall@10 against exact search (numpy
  over the tenant's own vectors, ties within 1e-5 count), p50/p95 latency of the call on one
  connection inside ``tenant_transaction`` (warm: every query runs once unmeasured first), and
  how often plain returned fewer than 10 rows. Plans are checked with EXPLAIN; the three slowest
  queries over 5 ms of each pass are run again under EXPLAIN ANALYZE.
- reachability: up to ``--reach-sample`` memories of every sampled tenant with its own index,
  searched by their own vector (limit 1, ef_search 200): the share the HNSW graph does not
  return, for the tenants' own indexes (through ``nearest``) and for the shared index (no
  tenant filter). A memory missed so is one no query is likely to find.

The machine is shared: the 1-minute load average is recorded after every phase. The local
embedding model's speed has a bench of its own (bench/embedding.py).

    .venv/bin/python bench/memory.py [--rows 1000000] [--tenants 1000] [--alpha 1.2]
        [--queries 100] [--sample-tenants 20] [--batch 5000]
        [--plain-ef 200] [--opshub-ef 200] [--ef-construction 64,200] [--seed 7] [--quick]

--quick: 50k rows, 200 tenants, 50 queries per class; prints, writes nothing.
The server gets shared_buffers 4GB, maintenance_work_mem 2GB, max_parallel_maintenance_workers
1 (two cores), max_wal_size 8GB. Results go to bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy import make_url

from opshub.db.embedded import start_embedded_postgres, stop_embedded_postgres
from opshub.db.engine import DatabaseUrls, create_pool, set_tenant, tenant_transaction
from opshub.db.migrate import migrate
from opshub.memory import indexes
from opshub.memory.bulk import bulk_insert
from opshub.memory.embedders import LOCAL_MODEL
from opshub.memory.service import QUERIES, content_hash, nearest, vector_text

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "memory.json"
DIM = 384
K = 10
THRESHOLD = 1_000  # opshub's default index threshold
OPSHUB_EF = 100  # nearest()'s default ef_search
OPSHUB_EF_CONSTRUCTION = 200  # what opshub.memory.indexes builds with
SHARED_INDEX = "ix_memories_bench_shared_hnsw"
CLASSES = {"le_100": "<= 100", "le_10k": "<= 10k", "gt_10k": "> 10k"}  # rows of the tenant
SERVER_SETTINGS = {
    "shared_buffers": "4GB",
    "maintenance_work_mem": "2GB",
    "max_parallel_maintenance_workers": "1",
    "max_wal_size": "8GB",
}
PLAIN = (
    "SELECT id, embedding <=> $2::text::vector AS distance FROM memories "
    "WHERE tenant_id = $1 ORDER BY embedding <=> $2::text::vector LIMIT 10"
)
SLOW_S = 0.005  # the p95 target: a slower query's plan is looked at again
REACH_EF = 200  # ef_search of the reachability searches, both approaches
TIE = 1e-5  # pgvector sums in single precision; a distance this close to the 10th is a tie

# The synthetic space: topics shared by every tenant, clusters of a tenant near its topics.
TOPICS, LOCAL_DIMS = 512, 24
TENANT_OFFSET = 0.35  # norm of a tenant's cluster centre's offset from its topic
LOCAL_SPREAD = 0.6  # norm of a memory's offset within its topic's subspace
NOISE = 0.15  # norm of a memory's isotropic noise

PRODUCTS = ("mug", "scarf", "tent", "lamp", "kettle", "backpack", "candle", "jacket")
CHANNELS = ("email", "Instagram", "search ads", "the newsletter", "TikTok", "the shop")
MONTHS = ("January", "March", "May", "July", "September", "November")


# -- data -----------------------------------------------------------------------------------------
def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class Space:
    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 0])
        self.topics = unit(rng.standard_normal((TOPICS, DIM)))
        # An orthonormal basis per topic: the directions its memories vary in.
        self.bases = np.linalg.qr(rng.standard_normal((TOPICS, DIM, LOCAL_DIMS)))[0]
        popularity = np.arange(1, TOPICS + 1, dtype=float) ** -1.0
        self.popularity = popularity / popularity.sum()

    def points(
        self, rng: np.random.Generator, centre: np.ndarray, topic: int, n: int
    ) -> np.ndarray:
        local = rng.standard_normal((n, LOCAL_DIMS)) @ self.bases[topic].T
        noise = rng.standard_normal((n, DIM))
        x = centre + local * (LOCAL_SPREAD / np.sqrt(LOCAL_DIMS)) + noise * (NOISE / np.sqrt(DIM))
        return unit(x).astype(np.float32)


@dataclass
class Tenant:
    no: int
    size: int
    id: uuid.UUID
    topics: np.ndarray  # a topic per cluster
    centres: np.ndarray  # a centre per cluster
    cluster_sizes: np.ndarray

    @property
    def size_class(self) -> str:
        return "le_100" if self.size <= 100 else "le_10k" if self.size <= 10_000 else "gt_10k"

    @property
    def indexed(self) -> bool:
        return self.size >= THRESHOLD


def zipf_sizes(rows: int, tenants: int, alpha: float) -> list[int]:
    weights = np.arange(1, tenants + 1, dtype=float) ** -alpha
    sizes = np.maximum(np.round(weights / weights.sum() * rows), 1).astype(int)
    sizes[0] += rows - sizes.sum()  # exactly ``rows`` in all
    return [int(s) for s in sizes]


def plan_tenants(space: Space, sizes: list[int], seed: int) -> list[Tenant]:
    tenants = []
    for no, size in enumerate(sizes):
        rng = np.random.default_rng([seed, 1, no])
        k = int(np.clip(round(np.sqrt(size) / 8), 1, 64))
        topics = rng.choice(TOPICS, size=k, replace=False, p=space.popularity)
        centres = unit(space.topics[topics] + TENANT_OFFSET * unit(rng.standard_normal((k, DIM))))
        cluster_sizes = rng.multinomial(size, np.full(k, 1 / k))
        tenants.append(Tenant(no, size, uuid.uuid4(), topics, centres, cluster_sizes))
    return tenants


def tenant_vectors(space: Space, tenant: Tenant, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 2, tenant.no])
    parts = [
        space.points(rng, tenant.centres[j], int(tenant.topics[j]), int(n))
        for j, n in enumerate(tenant.cluster_sizes)
        if n
    ]
    return np.concatenate(parts)


def queries_for(space: Space, tenant: Tenant, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 3, tenant.no])
    clusters = rng.choice(len(tenant.centres), size=count, p=tenant.cluster_sizes / tenant.size)
    return np.concatenate(
        [space.points(rng, tenant.centres[j], int(tenant.topics[j]), 1) for j in clusters]
    )


def sentence(tenant_no: int, i: int) -> str:
    product = PRODUCTS[i % len(PRODUCTS)]
    channel = CHANNELS[(i // 8) % len(CHANNELS)]
    month = MONTHS[(i // 48) % len(MONTHS)]
    return (
        f"Note {tenant_no}-{i}: the {product} promotion on {channel} lifted orders by "
        f"{(i * 7) % 40 + 3}% in {month}."
    )


def rows_of(
    tenant: Tenant, vectors: np.ndarray, start: int, stop: int
) -> Iterator[tuple[Any, ...]]:
    for i in range(start, stop):
        yield (sentence(tenant.no, i), "tenant", "", "fact", vectors[i], {"i": i}, 0.5)


# -- database -----------------------------------------------------------------------------------
def database_urls(data_dir: Path) -> DatabaseUrls:
    owner = make_url(start_embedded_postgres(data_dir)).set(drivername="postgresql+asyncpg")
    return DatabaseUrls(
        owner=owner.render_as_string(hide_password=False),
        app=owner.set(username="opshub_app").render_as_string(hide_password=False),
    )


def plain_dsn(url: str) -> str:
    return url.replace("+asyncpg", "")


async def configure_server(data_dir: Path, urls: DatabaseUrls) -> DatabaseUrls:
    conn = await asyncpg.connect(plain_dsn(urls.owner))
    try:
        for name, value in SERVER_SETTINGS.items():
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    finally:
        await conn.close()
    stop_embedded_postgres(data_dir)  # shared_buffers takes a restart
    return database_urls(data_dir)


async def create_tenants(owner: asyncpg.Pool, tenants: list[Tenant]) -> None:
    # Memories need only the tenant row: no users or API keys (an argon2 hash each).
    async with owner.acquire() as conn:
        await conn.executemany(
            "INSERT INTO tenants (id, name) VALUES ($1, $2)",
            [(t.id, f"memory-bench-{t.no}") for t in tenants],
        )


async def ingest(
    app: asyncpg.Pool, space: Space, tenants: list[Tenant], seed: int, batch: int,
    keep: set[int],
) -> tuple[dict[str, Any], dict[int, np.ndarray]]:  # fmt: skip
    seconds, rows, inserted, calls = 0.0, 0, 0, 0
    full_seconds, full_rows = 0.0, 0  # calls of a whole batch: the per-call cost spread thin
    kept: dict[int, np.ndarray] = {}
    reported = time.perf_counter()
    for tenant in tenants:
        vectors = tenant_vectors(space, tenant, seed)
        if tenant.no in keep:
            kept[tenant.no] = vectors
        for start in range(0, tenant.size, batch):
            stop = min(start + batch, tenant.size)
            began = time.perf_counter()
            async with tenant_transaction(app, tenant.id) as conn:
                inserted += await bulk_insert(
                    conn, tenant_id=tenant.id, model=LOCAL_MODEL,
                    rows=rows_of(tenant, vectors, start, stop),
                )  # fmt: skip
            took = time.perf_counter() - began
            seconds, rows, calls = seconds + took, rows + stop - start, calls + 1
            if stop - start == batch:
                full_seconds, full_rows = full_seconds + took, full_rows + batch
        if time.perf_counter() - reported > 30:
            reported = time.perf_counter()
            print(f"  ingest: {rows:,} rows, {rows / seconds:,.0f} rows/s", flush=True)
    return {
        "rows": rows,
        "inserted": inserted,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "calls": calls,
        "batch_rows": batch,
        "rows_per_s_in_whole_batches": round(full_rows / full_seconds) if full_rows else None,
        "target_rows_per_s_min": 20_000,
    }, kept


async def parallel_probe(
    app_url: str, owner: asyncpg.Pool, vectors: np.ndarray, template: Tenant
) -> dict[str, Any]:
    """The same rows for two new tenants through bulk_insert: one tenant after the other on one
    connection, then both at once on two. Every transaction is rolled back: the table keeps only
    dead rows, which VACUUM removes."""
    tenants = [
        Tenant(-1 - n, len(vectors), uuid.uuid4(), template.topics, template.centres,
               template.cluster_sizes)
        for n in range(2)
    ]  # fmt: skip
    await create_tenants(owner, tenants)
    pool = await create_pool(app_url, size=2)

    async def load(tenant: Tenant) -> None:
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                await set_tenant(conn, tenant.id)
                await bulk_insert(
                    conn, tenant_id=tenant.id, model=LOCAL_MODEL,
                    rows=rows_of(tenant, vectors, 0, len(vectors)),
                )  # fmt: skip
            finally:
                await transaction.rollback()

    try:
        began = time.perf_counter()
        for tenant in tenants:
            await load(tenant)
        one = time.perf_counter() - began
        began = time.perf_counter()
        await asyncio.gather(*(load(tenant) for tenant in tenants))
        two = time.perf_counter() - began
    finally:
        await pool.close()
    rows = 2 * len(vectors)
    return {
        "rows": rows,
        "one_connection_rows_per_s": round(rows / one),
        "two_connections_rows_per_s": round(rows / two),
        "ratio": round(one / two, 3),
    }


async def raw_copy_ceiling(owner_url: str, vectors: np.ndarray, tenant: Tenant) -> dict[str, Any]:
    """Binary COPY straight into a scratch table shaped like memories (its indexes, its generated
    full-text column; no RLS, foreign keys or dedupe), rows built beforehand: what bulk_insert's
    detour through a temp table, and the row building in it, cost."""
    from pgvector.asyncpg import register_vector

    conn = await asyncpg.connect(plain_dsn(owner_url))
    try:
        await register_vector(conn)
        await conn.execute("CREATE TABLE memories_copy_probe (LIKE memories INCLUDING ALL)")
        records = [
            (tenant.id, "tenant", "", "fact", sentence(tenant.no, i), vectors[i], LOCAL_MODEL,
             json.dumps({"i": i}), content_hash(sentence(tenant.no, i)))
            for i in range(len(vectors))
        ]  # fmt: skip
        columns = ["tenant_id", "scope", "scope_key", "kind", "content", "embedding",
                   "embedding_model", "metadata", "content_hash"]  # fmt: skip
        began = time.perf_counter()
        await conn.copy_records_to_table("memories_copy_probe", records=records, columns=columns)
        took = time.perf_counter() - began
    finally:
        await conn.execute("DROP TABLE IF EXISTS memories_copy_probe")
        await conn.close()
    return {"rows": len(vectors), "rows_per_s": round(len(vectors) / took)}


async def relation_mb(conn: asyncpg.Connection, pattern: str) -> float:
    size = await conn.fetchval(
        "SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint FROM pg_class c "
        "WHERE c.relname LIKE $1",
        pattern,
    )
    return round(size / 2**20, 1)


async def build_options(conn: asyncpg.Connection, pattern: str) -> list[str]:
    """The distinct build options (``m=16``, ``ef_construction=…``) of the indexes named like
    ``pattern``, as the catalog holds them."""
    rows = await conn.fetch(
        "SELECT DISTINCT array_to_string(c.reloptions, ', ') AS options FROM pg_class c "
        "WHERE c.relkind = 'i' AND c.relname LIKE $1 ORDER BY 1",
        pattern,
    )
    return [row["options"] for row in rows]


async def rebuild_opshub_indexes(owner: asyncpg.Pool, ef_construction: int) -> dict[str, Any]:
    """opshub's per-tenant indexes again, same names and predicates, at another
    ``ef_construction``: the comparison of graphs alone, everything else as opshub runs."""
    async with owner.acquire() as conn:
        registered = await conn.fetch("SELECT tenant_id, embedding_model FROM memory_indexes")
        began = time.perf_counter()
        for row in registered:
            name = indexes.index_name(row["tenant_id"], row["embedding_model"])
            partition = await indexes.tenant_partition(conn, row["tenant_id"])
            await conn.execute(f"DROP INDEX {partition['schema']}.{name}")
            await conn.execute(
                f"CREATE INDEX {name} ON {partition['partition']} "
                "USING hnsw (embedding vector_cosine_ops) "
                f"WITH (m = 16, ef_construction = {int(ef_construction)}) "
                f"WHERE {indexes.tenant_predicate(row['tenant_id'], row['embedding_model'])}"
            )
        took = time.perf_counter() - began
        await conn.execute("ANALYZE memories")
        return {
            "indexes": len(registered),
            "seconds": round(took, 1),
            "size_mb": await relation_mb(conn, "ix\\_memories\\_hnsw\\_%"),
            "options": await build_options(conn, "ix\\_memories\\_hnsw\\_%"),
        }


async def build_shared_index(owner: asyncpg.Pool, ef_construction: int) -> dict[str, Any]:
    async with owner.acquire() as conn:
        await conn.execute(f"DROP INDEX IF EXISTS {SHARED_INDEX}")
        began = time.perf_counter()
        await conn.execute(
            f"CREATE INDEX {SHARED_INDEX} ON memories USING hnsw (embedding vector_cosine_ops) "
            f"WITH (m = 16, ef_construction = {int(ef_construction)})"
        )
        took = time.perf_counter() - began
        await conn.execute("ANALYZE memories")
        # memories is partitioned (0019): the index is one per partition, under the parent's name.
        size = await conn.fetchval(
            "SELECT sum(pg_relation_size(relid))::bigint FROM pg_partition_tree($1::regclass)",
            SHARED_INDEX,
        )
        return {
            "indexes": 1,
            "seconds": round(took, 1),
            "size_mb": round(size / 2**20, 1),
            "options": await build_options(conn, SHARED_INDEX),
        }


async def explain(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + sql, *args))
    return re.sub(r"'\[[^\]]*\]'::vector", "'[384 floats]'::vector", plan)


# -- queries ------------------------------------------------------------------------------------
@dataclass
class Probe:
    tenant: Tenant
    vector: np.ndarray
    truth: np.ndarray  # exact distance to each memory of the tenant, by row number


@dataclass
class Outcome:
    probe: Probe
    recall: float
    seconds: float
    rows: int


Query = Callable[[Probe], Awaitable[tuple[list[uuid.UUID], float]]]


def recall(probe: Probe, rows: list[int]) -> float:
    k = min(K, probe.tenant.size)
    kth = np.partition(probe.truth, k - 1)[k - 1]
    return min(sum(1 for i in set(rows) if probe.truth[i] <= kth + TIE), k) / k


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(int(len(ordered) * q) - 1, 0)]


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    recalls, seconds = [o.recall for o in outcomes], [o.seconds for o in outcomes]
    return {
        "queries": len(outcomes),
        "recall_at_10": round(statistics.mean(recalls), 4),
        "recall_at_10_worst_query": round(min(recalls), 2),
        "p50_ms": round(statistics.median(seconds) * 1000, 2),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 2),
        "fewer_than_10_rows": round(sum(o.rows < K for o in outcomes) / len(outcomes), 4),
    }


def by_class(outcomes: list[Outcome], *, paths: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in CLASSES:
        members = [o for o in outcomes if o.probe.tenant.size_class == name]
        if not members:
            continue
        result[name] = summary(members)
        if name == "gt_10k":  # few tenants, very different sizes: each one's recall
            sizes = sorted({o.probe.tenant.size for o in members}, reverse=True)
            result[name]["recall_by_tenant_rows"] = {
                size: round(statistics.mean(
                    o.recall for o in members if o.probe.tenant.size == size
                ), 3)
                for size in sizes
            }  # fmt: skip
        if paths:  # opshub: exact below the threshold, the tenant's own index above it
            for path, indexed in (("exact", False), ("indexed", True)):
                chosen = [o for o in members if o.probe.tenant.indexed is indexed]
                if chosen:
                    result[name][path] = summary(chosen)
    return result


async def measure(probes: list[Probe], ids: dict[uuid.UUID, int], query: Query) -> list[Outcome]:
    """Every probe once unmeasured (caches, prepared statements), then once measured."""
    for probe in probes:
        await query(probe)
    outcomes = []
    for probe in probes:
        hits, took = await query(probe)
        outcomes.append(Outcome(probe, recall(probe, [ids[h] for h in hits]), took, len(hits)))
    return outcomes


Statement = Callable[[Probe], tuple[str, tuple[Any, ...]]]


async def explain_slow(
    app: asyncpg.Pool, outcomes: list[Outcome], statement: Statement, ef_search: int
) -> list[dict[str, Any]]:
    """EXPLAIN ANALYZE, once more, the three slowest queries over the latency target."""
    slow = sorted((o for o in outcomes if o.seconds > SLOW_S), key=lambda o: -o.seconds)[:3]
    explained = []
    for outcome in slow:
        sql, args = statement(outcome.probe)
        async with tenant_transaction(app, outcome.probe.tenant.id) as conn:
            await conn.execute("SELECT set_config('hnsw.ef_search', $1, true)", str(ef_search))
            plan = await explain(conn, "(ANALYZE, BUFFERS) " + sql, *args)
        explained.append({
            "tenant_rows": outcome.probe.tenant.size,
            "ms": round(outcome.seconds * 1000, 2),
            "explain_analyze_rerun": plan,
        })  # fmt: skip
    return explained


def opshub_statement(ef_search: int) -> Statement:
    def statement(probe: Probe) -> tuple[str, tuple[Any, ...]]:
        text = vector_text(probe.vector.tolist())
        unfiltered = {"vector": text, "scopes": None, "kinds": None, "metadata": {}, "limit": K}
        if probe.tenant.indexed:
            query = indexes.nearest_indexed(probe.tenant.id, LOCAL_MODEL, ef_search)
            return query.text, tuple(query.args(unfiltered))
        exact = {**unfiltered, "tenant_id": probe.tenant.id, "embedding_model": LOCAL_MODEL}
        return QUERIES["nearest_exact"].text, tuple(QUERIES["nearest_exact"].args(exact))

    return statement


def plain_statement(probe: Probe) -> tuple[str, tuple[Any, ...]]:
    return PLAIN, (probe.tenant.id, vector_text(probe.vector.tolist()))


def opshub_query(app: asyncpg.Pool, ef_search: int = OPSHUB_EF) -> Query:
    async def query(probe: Probe) -> tuple[list[uuid.UUID], float]:
        vector = probe.vector.tolist()
        async with tenant_transaction(app, probe.tenant.id) as conn:
            began = time.perf_counter()
            hits = await nearest(
                conn, tenant_id=probe.tenant.id, model=LOCAL_MODEL, vector=vector, limit=K,
                ef_search=ef_search,
            )  # fmt: skip
            took = time.perf_counter() - began
        return [memory_id for memory_id, _ in hits], took

    return query


def plain_query(app: asyncpg.Pool, ef_search: int) -> Query:
    async def query(probe: Probe) -> tuple[list[uuid.UUID], float]:
        vector = probe.vector.tolist()
        async with tenant_transaction(app, probe.tenant.id) as conn:
            await conn.execute("SELECT set_config('hnsw.ef_search', $1, true)", str(ef_search))
            began = time.perf_counter()
            rows = await conn.fetch(PLAIN, probe.tenant.id, vector_text(vector))
            took = time.perf_counter() - began
        return [row["id"] for row in rows], took

    return query


Finds = Callable[[Tenant, np.ndarray], Awaitable[uuid.UUID | None]]


def reachability_sample(
    picked: dict[str, list[Tenant]], kept: dict[int, np.ndarray], per_tenant: int, seed: int
) -> list[tuple[Tenant, int, np.ndarray]]:
    """Up to ``per_tenant`` memories of each sampled tenant that has its own index."""
    rng = np.random.default_rng([seed, 6])
    sample = []
    for chosen in picked.values():
        for tenant in chosen:
            if tenant.indexed:
                rows = rng.choice(tenant.size, size=min(per_tenant, tenant.size), replace=False)
                sample += [(tenant, int(i), kept[tenant.no][i]) for i in rows]
    return sample


async def reachability(
    sample: list[tuple[Tenant, int, np.ndarray]], by_number: dict[tuple[uuid.UUID, int], uuid.UUID],
    finds: Finds,
) -> dict[str, Any]:  # fmt: skip
    """Search each memory's own vector for its closest match: a graph that does not return the
    memory itself cannot reach it, and no ef_search lets a query find it."""
    missed: dict[str, int] = {}
    for tenant, i, vector in sample:
        if await finds(tenant, vector) != by_number[(tenant.id, i)]:
            missed[tenant.size_class] = missed.get(tenant.size_class, 0) + 1
    return {
        "memories_searched": len(sample),
        "not_found_by_their_own_vector": sum(missed.values()),
        "fraction": round(sum(missed.values()) / max(len(sample), 1), 5),
        "by_class": missed,
    }


def opshub_finds(app: asyncpg.Pool) -> Finds:
    async def finds(tenant: Tenant, vector: np.ndarray) -> uuid.UUID | None:
        async with tenant_transaction(app, tenant.id) as conn:
            hits = await nearest(
                conn, tenant_id=tenant.id, model=LOCAL_MODEL, vector=vector.tolist(), limit=1,
                ef_search=REACH_EF,
            )  # fmt: skip
        return hits[0][0] if hits else None

    return finds


def shared_finds(owner: asyncpg.Pool) -> Finds:
    async def finds(tenant: Tenant, vector: np.ndarray) -> uuid.UUID | None:
        # The whole graph the tenant's rows are in, no filter: since 0019 the shared index is one
        # graph per partition, and searching through memories would walk all 64 of them.
        async with owner.acquire() as conn, conn.transaction():
            partition = await indexes.tenant_partition(conn, tenant.id)
            await conn.execute("SELECT set_config('hnsw.ef_search', $1, true)", str(REACH_EF))
            found: uuid.UUID | None = await conn.fetchval(
                f"SELECT id FROM {partition['partition']} "  # noqa: S608
                "ORDER BY embedding <=> $1::text::vector LIMIT 1",
                vector_text(vector.tolist()),
            )
        return found

    return finds


def pick_tenants(tenants: list[Tenant], sample: int) -> dict[str, list[Tenant]]:
    """Up to ``sample`` tenants per class, spread evenly over the class's sizes on a log scale
    (in the middle class, tenants searched exactly and through their index alike)."""
    picked: dict[str, list[Tenant]] = {}
    for name in CLASSES:
        members = sorted((t for t in tenants if t.size_class == name), key=lambda t: t.size)
        if not members:
            continue
        logs = np.log([t.size for t in members])
        chosen: list[Tenant] = []
        for target in np.linspace(logs[0], logs[-1], min(sample, len(members))):
            free = [i for i in range(len(members)) if members[i] not in chosen]
            chosen.append(members[min(free, key=lambda i: abs(logs[i] - target))])
        picked[name] = chosen
    return picked


def make_probes(
    space: Space, picked: dict[str, list[Tenant]], kept: dict[int, np.ndarray], per_class: int,
    seed: int,
) -> list[Probe]:  # fmt: skip
    probes = []
    for chosen in picked.values():
        for n, tenant in enumerate(chosen):
            count = per_class // len(chosen) + (n < per_class % len(chosen))
            if not count:
                continue
            queries = queries_for(space, tenant, count, seed)
            truth = 1.0 - kept[tenant.no].astype(np.float64) @ queries.astype(np.float64).T
            probes += [Probe(tenant, q, truth[:, j]) for j, q in enumerate(queries)]
    order = np.random.default_rng([seed, 5]).permutation(len(probes))
    return [probes[i] for i in order]  # mixed traffic: the classes interleave


# -- the run ------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    report["load_avg_1m"] = {"start": os.getloadavg()[0]}

    urls = await configure_server(data_dir, database_urls(data_dir))
    await migrate(urls)
    owner = await create_pool(urls.owner, size=2)
    app = await create_pool(urls.app, size=1)  # one connection: its plans and caches are warm
    try:
        async with owner.acquire() as conn:
            report["server"] = {
                "version": await conn.fetchval("SHOW server_version"),
                "pgvector": await conn.fetchval(
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                ),
                **{name: await conn.fetchval(f"SHOW {name}") for name in SERVER_SETTINGS},
            }
        space = Space(args.seed)
        tenants = plan_tenants(space, zipf_sizes(args.rows, args.tenants, args.alpha), args.seed)
        await create_tenants(owner, tenants)
        classes: dict[str, Any] = {}
        for name, label in CLASSES.items():
            sizes = [t.size for t in tenants if t.size_class == name]
            classes[name] = {
                "label": label, "tenants": len(sizes), "rows": sum(sizes),
                "smallest": min(sizes, default=0), "largest": max(sizes, default=0),
                "with_own_index": sum(size >= THRESHOLD for size in sizes),
            }  # fmt: skip
        report["data"] = {
            "rows": args.rows,
            "tenants": args.tenants,
            "zipf_alpha": args.alpha,
            "classes": classes,
            "vectors": f"{TOPICS} shared topics; clusters per tenant sqrt(rows)/8 (1-64) on "
            f"popular topics, centre offset {TENANT_OFFSET} from the topic; a memory moves "
            f"{LOCAL_SPREAD} within the topic's {LOCAL_DIMS}-d subspace plus noise {NOISE}, "
            "unit length, float32",
        }
        print(json.dumps(classes), flush=True)
        picked = pick_tenants(tenants, args.sample_tenants)
        keep = {t.no for chosen in picked.values() for t in chosen}

        print(f"ingest of {args.rows:,} rows …", flush=True)
        report["ingest"], kept = await ingest(app, space, tenants, args.seed, args.batch, keep)
        biggest = tenants[0]
        sample = tenant_vectors(space, biggest, args.seed)[:50_000]
        ceiling = await raw_copy_ceiling(urls.owner, sample, biggest)
        report["ingest"]["ceiling_raw_binary_copy"] = ceiling
        report["ingest"]["ratio_to_ceiling"] = round(
            report["ingest"]["rows_per_s"] / ceiling["rows_per_s"], 3
        )
        report["ingest"]["parallel_probe"] = await parallel_probe(
            urls.app, owner, sample[:25_000], biggest
        )
        report["load_avg_1m"]["ingest_done"] = os.getloadavg()[0]
        print(f"  {json.dumps(report['ingest'])}", flush=True)
        async with owner.acquire() as conn:
            await conn.execute("VACUUM ANALYZE memories")
            table_bytes = await conn.fetchval("SELECT pg_table_size('memories')")
            report["data"]["table_mb"] = round(table_bytes / 2**20, 1)
            # Each memory's row number, for the sampled tenants: ground truth is by number.
            rows = await conn.fetch(
                "SELECT id, tenant_id, (metadata->>'i')::int AS i FROM memories "
                "WHERE tenant_id = ANY($1)",
                [t.id for chosen in picked.values() for t in chosen],
            )
        ids = {row["id"]: row["i"] for row in rows}
        owners = {row["id"]: row["tenant_id"] for row in rows}
        probes = make_probes(space, picked, kept, args.queries, args.seed)
        by_number = {(owners[memory_id], i): memory_id for memory_id, i in ids.items()}
        reach_sample = reachability_sample(picked, kept, args.reach_sample, args.seed)
        del kept

        print("opshub indexes (maintain) …", flush=True)
        began = time.perf_counter()
        built = await indexes.maintain(owner, threshold=THRESHOLD)
        async with owner.acquire() as conn:
            report["indexes"] = {
                "opshub_per_tenant": {
                    "indexes": built,
                    "seconds": round(time.perf_counter() - began, 1),
                    "size_mb": await relation_mb(conn, "ix\\_memories\\_hnsw\\_%"),
                    "options": await build_options(conn, "ix\\_memories\\_hnsw\\_%"),
                }
            }
        report["load_avg_1m"]["opshub_indexes_done"] = os.getloadavg()[0]
        print(f"  {json.dumps(report['indexes'])}", flush=True)

        plans: dict[str, str] = {}
        small = min((t for chosen in picked.values() for t in chosen), key=lambda t: t.size)
        for tenant, query in (
            (biggest, indexes.nearest_indexed(biggest.id, LOCAL_MODEL, OPSHUB_EF)),
            (small, QUERIES["nearest_exact"]),
        ):
            async with tenant_transaction(app, tenant.id) as conn:
                text = vector_text(queries_for(space, tenant, 1, args.seed)[0].tolist())
                named = {"vector": text, "scopes": None, "kinds": None, "metadata": {}, "limit": K}
                if tenant is small:
                    named |= {"tenant_id": tenant.id, "embedding_model": LOCAL_MODEL}
                path = "exact_smallest" if tenant is small else "indexed_biggest"
                plans[f"opshub_{path}_tenant"] = await explain(conn, query.text, *query.args(named))
        checks = {
            "opshub_biggest_tenant_uses_its_own_index": indexes.index_name(biggest.id, LOCAL_MODEL)
            in plans["opshub_indexed_biggest_tenant"],
            "opshub_exact_path_sorts": "Sort" in plans["opshub_exact_smallest_tenant"]
            and "hnsw" not in plans["opshub_exact_smallest_tenant"],
        }
        if not all(checks.values()):
            raise SystemExit(f"opshub's plans are not what they should be: {plans}")

        print(f"opshub queries ({len(probes)}) …", flush=True)
        slow: dict[str, list[dict[str, Any]]] = {}
        outcomes = await measure(probes, ids, opshub_query(app))
        opshub = by_class(outcomes, paths=True)
        slow["opshub"] = await explain_slow(app, outcomes, opshub_statement(OPSHUB_EF), OPSHUB_EF)
        for name, chosen in picked.items():
            opshub[name]["tenants_sampled"] = [t.size for t in chosen]
        print(f"  {json.dumps(opshub)}", flush=True)
        opshub_other_ef = {}
        for ef in args.opshub_ef:  # nearest(ef_search=…): what a caller can ask for
            print(f"opshub queries, ef_search {ef} …", flush=True)
            outcomes = await measure(probes, ids, opshub_query(app, ef))
            opshub_other_ef[f"ef_search_{ef}"] = by_class(outcomes, paths=True)
            slow[f"opshub_ef_search_{ef}"] = await explain_slow(
                app, outcomes, opshub_statement(ef), ef
            )
            print(f"  {json.dumps(opshub_other_ef[f'ef_search_{ef}'])}", flush=True)
        print("opshub reachability …", flush=True)
        reach = {"opshub_own_indexes": await reachability(
            reach_sample, by_number, opshub_finds(app)
        )}  # fmt: skip
        print(f"  {json.dumps(reach)}", flush=True)
        # The same tenants' indexes built as the plain side's may be: the graph alone compared.
        opshub_by_efc = {f"ef_construction_{OPSHUB_EF_CONSTRUCTION}": opshub}
        report["indexes"]["opshub_per_tenant_other_ef_construction"] = {}
        for efc in sorted(set(args.ef_construction) - {OPSHUB_EF_CONSTRUCTION}):
            print(f"opshub indexes rebuilt at ef_construction {efc} …", flush=True)
            key = f"ef_construction_{efc}"
            rebuilt = await rebuild_opshub_indexes(owner, efc)
            report["indexes"]["opshub_per_tenant_other_ef_construction"][key] = rebuilt
            outcomes = await measure(probes, ids, opshub_query(app))
            opshub_by_efc[key] = by_class(outcomes, paths=True)
            reach[f"opshub_own_indexes_{key}"] = await reachability(
                reach_sample, by_number, opshub_finds(app)
            )
            print(f"  {json.dumps(opshub_by_efc[key])}", flush=True)
        report["load_avg_1m"]["opshub_queries_done"] = os.getloadavg()[0]

        plain_by_efc: dict[str, Any] = {}
        report["indexes"]["plain_shared_by_ef_construction"] = {}
        reach["plain_shared_index_by_ef_construction"] = {}
        plain_plans: dict[str, Any] = {}
        for efc in sorted(set(args.ef_construction)):
            key = f"ef_construction_{efc}"
            print(f"shared HNSW index, ef_construction {efc} …", flush=True)
            shared = await build_shared_index(owner, efc)
            report["indexes"]["plain_shared_by_ef_construction"][key] = shared
            report["load_avg_1m"][f"shared_index_{key}_done"] = os.getloadavg()[0]
            print(f"  {json.dumps(shared)}", flush=True)
            for name, chosen in picked.items():
                tenant = chosen[-1]  # the class's largest sampled tenant
                async with tenant_transaction(app, tenant.id) as conn:
                    text = vector_text(queries_for(space, tenant, 1, args.seed)[0].tolist())
                    plans[f"plain_{key}_{name}_largest_sampled_tenant"] = await explain(
                        conn, PLAIN, tenant.id, text
                    )
            async with owner.acquire() as conn:
                shared_parts = [
                    row[0]
                    for row in await conn.fetch(
                        "SELECT relid::regclass::text FROM pg_partition_tree($1::regclass)",
                        SHARED_INDEX,
                    )
                ]
            checks[f"plain_{key}_uses_the_shared_index_for_the_biggest_tenants"] = any(
                part.split(".")[-1] in plans[f"plain_{key}_gt_10k_largest_sampled_tenant"]
                for part in shared_parts
            )
            plain: dict[str, Any] = {}
            for ef in (40, *args.plain_ef):
                print(f"plain queries, ef_construction {efc}, ef_search {ef} …", flush=True)
                outcomes = await measure(probes, ids, plain_query(app, ef))
                plain[f"ef_search_{ef}"] = by_class(outcomes)
                slow[f"plain_{key}_ef_search_{ef}"] = await explain_slow(
                    app, outcomes, plain_statement, ef
                )
                print(f"  {json.dumps(plain[f'ef_search_{ef}'])}", flush=True)
            plain_by_efc[key] = plain
            async with app.acquire() as conn:
                # Whether PostgreSQL went on planning per tenant (custom) or settled on one plan
                # for all (generic), over the passes so far.
                counts = await conn.fetchrow(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement = $1",
                    PLAIN,
                )
            plain_plans[key] = dict(counts) if counts else None
            print(f"shared index reachability, ef_construction {efc} …", flush=True)
            reach["plain_shared_index_by_ef_construction"][key] = await reachability(
                reach_sample, by_number, shared_finds(owner)
            )
            print(f"  {json.dumps(reach['plain_shared_index_by_ef_construction'][key])}")
        report["load_avg_1m"]["plain_queries_done"] = os.getloadavg()[0]
        report["recall"] = {
            "opshub": opshub,
            "opshub_other_ef_search": opshub_other_ef,
            "opshub_by_ef_construction": opshub_by_efc,
            "plain_by_ef_construction": plain_by_efc,
            "plain_prepared_statement_plans": plain_plans,
        }
        report["reachability"] = reach
        report["checks"] = checks
        report["slow_queries"] = {name: plans for name, plans in slow.items() if plans}
        report["plans"] = plans
    finally:
        await app.close()
        await owner.close()
    return report


def table(report: dict[str, Any]) -> str:
    recall = report["recall"]
    sides = [("opshub", recall["opshub"])]
    sides += [(f"opshub ef {key[10:]}", v) for key, v in recall["opshub_other_ef_search"].items()]
    for efc, side in recall["opshub_by_ef_construction"].items():
        if side is not recall["opshub"]:
            sides.append((f"opshub efc {efc[16:]}", side))
    for efc, plain in recall["plain_by_ef_construction"].items():
        sides += [(f"plain efc {efc[16:]} ef {ef[10:]}", side) for ef, side in plain.items()]
    lines = [
        f"{'class':<8} {'tenants':>7}  {'approach':<22} {'queries':>7} {'recall@10':>9} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'<10 rows':>8}"
    ]
    for name, info in report["data"]["classes"].items():
        rows = []
        for label, side in sides:
            if name in side:
                rows.append((label, side[name]))
                if label == "opshub" and {"exact", "indexed"} <= side[name].keys():
                    rows += [(f"  {path}", side[name][path]) for path in ("exact", "indexed")]
        for label, s in rows:
            lines.append(
                f"{info['label']:<8} {info['tenants']:>7}  {label:<22} {s['queries']:>7} "
                f"{s['recall_at_10']:>9.4f} {s['p50_ms']:>7.2f} {s['p95_ms']:>7.2f} "
                f"{s['fewer_than_10_rows']:>8.0%}"
            )
    ingest, built = report["ingest"], report["indexes"]
    lines += [
        f"ingest (bulk_insert): {ingest['rows_per_s']:,} rows/s over {ingest['rows']:,} rows; "
        f"{ingest['rows_per_s_in_whole_batches']:,} rows/s in whole batches of "
        f"{ingest['batch_rows']:,}; raw binary COPY ceiling "
        f"{ingest['ceiling_raw_binary_copy']['rows_per_s']:,} rows/s; two tenants at once "
        f"{ingest['parallel_probe']['two_connections_rows_per_s']:,} rows/s against "
        f"{ingest['parallel_probe']['one_connection_rows_per_s']:,} one after the other",
        f"index builds: opshub {built['opshub_per_tenant']['indexes']} per-tenant indexes in "
        f"{built['opshub_per_tenant']['seconds']} s ({built['opshub_per_tenant']['size_mb']} MB, "
        f"{'; '.join(built['opshub_per_tenant']['options'])})",
    ]
    for efc, rebuilt in built["opshub_per_tenant_other_ef_construction"].items():
        lines.append(
            f"  rebuilt at {efc}: {rebuilt['seconds']} s ({rebuilt['size_mb']} MB, "
            f"{'; '.join(rebuilt['options'])})"
        )
    for efc, shared in built["plain_shared_by_ef_construction"].items():
        lines.append(
            f"plain shared index at {efc}: {shared['seconds']} s ({shared['size_mb']} MB, "
            f"{'; '.join(shared['options'])})"
        )
    reach = report["reachability"]
    found = [("opshub's own indexes", reach["opshub_own_indexes"])]
    found += [
        (f"opshub's own indexes, {key[19:]}", value)
        for key, value in reach.items()
        if key.startswith("opshub_own_indexes_")
    ]
    found += [
        (f"plain shared index, {efc}", value)
        for efc, value in reach["plain_shared_index_by_ef_construction"].items()
    ]
    lines.append(
        f"memories their own vector does not find (ef_search {REACH_EF}): "
        + "; ".join(f"{label} {value['fraction']:.2%}" for label, value in found)
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--alpha", type=float, default=1.2, help="Zipf exponent of tenant sizes")
    parser.add_argument("--queries", type=int, default=100, help="per size class")
    parser.add_argument("--sample-tenants", type=int, default=20, help="per size class")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per bulk_insert call")
    parser.add_argument(
        "--plain-ef", type=lambda s: [int(v) for v in s.split(",") if v], default=[200],
        help="ef_search values for plain besides the default 40",
    )  # fmt: skip
    parser.add_argument(
        "--opshub-ef", type=lambda s: [int(v) for v in s.split(",") if v], default=[200],
        help="ef_search values for opshub's nearest() besides the default 100",
    )  # fmt: skip
    parser.add_argument(
        "--reach-sample", type=int, default=500,
        help="memories per indexed sampled tenant searched by their own vector",
    )  # fmt: skip
    parser.add_argument(
        "--ef-construction", type=lambda s: [int(v) for v in s.split(",") if v],
        default=[64, OPSHUB_EF_CONSTRUCTION],
        help="HNSW ef_construction values both approaches are built and measured at",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="50k rows, 200 tenants; no file")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.tenants, args.queries = 50_000, 200, 50

    started = time.perf_counter()
    # Short path: the server's unix socket lives in it (socket paths are capped at 107 bytes).
    with tempfile.TemporaryDirectory(prefix="ohm-", dir="/tmp") as path:
        data_dir = Path(path)
        try:
            report = asyncio.run(run(args, data_dir))
        finally:
            stop_embedded_postgres(data_dir)
    report = {
        "benchmark": "memory",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), "
        f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GB, "
        f"Python {platform.python_version()}",
        "setup": "embedded PostgreSQL 16 + pgvector (pgserver) in a temp dir; "
        + ", ".join(f"{k}={v}" for k, v in SERVER_SETTINGS.items())
        + "; one app connection (opshub_app, RLS) for every query; HNSW m=16; opshub's "
        f"per-tenant indexes at ef_construction {OPSHUB_EF_CONSTRUCTION} (as opshub builds them), "
        "then rebuilt at "
        + ", ".join(str(e) for e in sorted(set(args.ef_construction) - {OPSHUB_EF_CONSTRUCTION}))
        + "; the plain shared index at "
        + ", ".join(str(e) for e in sorted(set(args.ef_construction)))
        + f" (each index's options as built: indexes.*.options); opshub ef_search {OPSHUB_EF}, "
        f"index threshold {THRESHOLD}",
        "took_s": round(time.perf_counter() - started, 1),
        "targets": {"recall_at_10_min": 0.99, "p95_ms_max": 5.0, "ingest_rows_per_s_min": 20_000},
        **report,
    }
    print(table(report))
    if args.quick:
        print(json.dumps(report, indent=2))
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
