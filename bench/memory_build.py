"""One tenant's HNSW build as ``memories`` grows: one table (0018) against hash partitions (0019).

A throw-away embedded PostgreSQL 16 + pgvector (pgserver, in a temp dir, the settings of
bench/memory.py) holds two databases: ``before``, migrated to 0018 (one ``memories`` table), and
``after``, migrated to head (``memories`` hash-partitioned by tenant, 0019). Both get the same
rows by binary COPY as the owner: two probe tenants of 1,000 rows (the index threshold: most
builds are of a tenant that just crossed it) and of 10,000 rows, then power-law tenants (Zipf,
alpha 1.2, about one tenant per 1,000 rows, in a random order so every step adds large and small
ones) until the table holds 0.5M, 1M, then 2M rows (``--steps``). 384-dimension vectors, unit
length, clustered per tenant: the dimension of opshub's embedders.

At every step, for each probe tenant and each database, the statement opshub runs is timed:
``CREATE INDEX CONCURRENTLY … USING hnsw (embedding vector_cosine_ops) WITH (m 16,
ef_construction 200) WHERE <the tenant's predicate>``, on ``memories`` before and on the
tenant's partition after (``opshub.memory.indexes.tenant_partition``), then dropped. Beside them
the same statement over a table holding only the tenant's rows: the graph alone. ``pg_stat_io``
(every backend type, relations) says how many 8 kB blocks each build read or found in shared
buffers: the scans. Each build runs ``--repeats`` times; the report keeps every time and the
median. Then, with ``--latency N``: ``opshub.memory.service.nearest`` N times per tenant on both
databases, alternating query by query (a tenant of 50-100 rows and the 1k probe searched exactly,
the 10k probe through its own index), p50/p95. Then, if ``--migrate``: both probes' indexes are
registered in ``before`` and 0019 runs on it (timed): the conversion of a table of the last
step's size, its indexes rebuilt.

The machine is shared: the 1-minute load average is recorded with every build.

    .venv/bin/python bench/memory_build.py [--steps 500000,1000000,2000000] [--repeats 2]
        [--tenants-per-1000-rows 1] [--seed 11] [--latency 0] [--migrate]
        [--out bench/results/memory-build.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import make_url

from opshub.db.embedded import start_embedded_postgres, stop_embedded_postgres
from opshub.db.engine import set_tenant
from opshub.db.migrate import upgrade
from opshub.memory import indexes
from opshub.memory.embedders import LOCAL_MODEL
from opshub.memory.service import content_hash, nearest

HERE = Path(__file__).parent
DIM = 384
PROBES = {"threshold_1k": 1_000, "mid_10k": 10_000}
SERVER_SETTINGS = {  # as bench/memory.py
    "shared_buffers": "4GB",
    "maintenance_work_mem": "2GB",
    "max_parallel_maintenance_workers": "1",
    "max_wal_size": "8GB",
}
COLUMNS = ["id", "tenant_id", "scope", "scope_key", "kind", "content", "embedding",
           "embedding_model", "content_hash"]  # fmt: skip
BUILD = (
    "CREATE INDEX CONCURRENTLY {name} ON {table} USING hnsw (embedding vector_cosine_ops) "
    "WITH (m = 16, ef_construction = 200) WHERE {predicate}"
)
IO = (
    "SELECT coalesce(sum(reads), 0)::bigint AS reads, coalesce(sum(hits), 0)::bigint AS hits "
    "FROM pg_stat_io WHERE object = 'relation'"
)


@dataclass
class Tenant:
    no: int
    size: int
    id: uuid.UUID


def zipf_sizes(rows: int, tenants: int, alpha: float = 1.2) -> list[int]:
    weights = np.arange(1, tenants + 1, dtype=float) ** -alpha
    sizes = np.maximum(np.round(weights / weights.sum() * rows), 1).astype(int)
    sizes[0] += rows - sizes.sum()
    return [int(s) for s in sizes]


def vectors(seed: int, tenant: Tenant) -> np.ndarray:
    """Unit vectors in a few clusters of the tenant's, as sentence embeddings cluster."""
    rng = np.random.default_rng([seed, tenant.no + 10])  # probes are -1, -2
    clusters = int(np.clip(round(np.sqrt(tenant.size) / 8), 1, 64))
    centres = rng.standard_normal((clusters, DIM))
    x = centres[rng.integers(0, clusters, tenant.size)] + rng.standard_normal((tenant.size, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def records(seed: int, tenant: Tenant) -> Iterator[tuple[Any, ...]]:
    for i, vector in enumerate(vectors(seed, tenant)):
        content = f"Note {tenant.no}-{i}: the promotion lifted orders by {(i * 7) % 40 + 3}%."
        yield (uuid.uuid4(), tenant.id, "tenant", "", "fact", content, vector, LOCAL_MODEL,
               content_hash(content))  # fmt: skip


def plain_dsn(url: str) -> str:
    return url.replace("+asyncpg", "")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(plain_dsn(url))
    await register_vector(conn)
    await conn.set_type_codec(  # as opshub's pools (opshub.db.engine): nearest() sends dicts
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )
    return conn


async def copy_in(conns: dict[str, asyncpg.Connection], seed: int, tenants: list[Tenant]) -> None:
    for conn in conns.values():
        await conn.executemany(
            "INSERT INTO tenants (id, name) VALUES ($1, $2)",
            [(t.id, f"build-bench-{t.no}") for t in tenants],
        )
    for tenant in tenants:
        rows = list(records(seed, tenant))
        await asyncio.gather(
            *(
                conn.copy_records_to_table("memories", records=rows, columns=COLUMNS)
                for conn in conns.values()
            )
        )


async def io_blocks(conn: asyncpg.Connection) -> tuple[int, int]:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow(IO)
    if row is None:
        raise LookupError("pg_stat_io returned no row")
    return int(row["reads"]), int(row["hits"])


async def timed_build(
    conn: asyncpg.Connection, watcher: asyncpg.Connection, *, name: str, table: str,
    predicate: str, schema: str,
) -> dict[str, Any]:  # fmt: skip
    """One CONCURRENTLY build, timed; the blocks it read and hit; then the index dropped."""
    reads, hits = await io_blocks(watcher)
    began = time.perf_counter()
    await conn.execute(BUILD.format(name=name, table=table, predicate=predicate))
    took = time.perf_counter() - began
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("SELECT 1")  # the flush happens as this statement ends
    await asyncio.sleep(0.2)
    reads_after, hits_after = await io_blocks(watcher)
    size = await conn.fetchval("SELECT pg_relation_size($1::regclass)", f"{schema}.{name}")
    await conn.execute(f"DROP INDEX {schema}.{name}")
    return {
        "seconds": round(took, 3),
        "blocks_read": reads_after - reads,
        "blocks_hit": hits_after - hits,
        "index_mb": round(size / 2**20, 1),
        "load_1m": load_average(),
    }


async def table_mb(conn: asyncpg.Connection, table: str) -> float:
    size = await conn.fetchval("SELECT pg_table_size($1::regclass)", table)
    return round(size / 2**20, 1)


async def measure_step(
    conns: dict[str, asyncpg.Connection], watchers: dict[str, asyncpg.Connection],
    probes: list[Tenant], repeats: int,
) -> dict[str, Any]:  # fmt: skip
    step: dict[str, Any] = {}
    for probe in probes:
        predicate = indexes.tenant_predicate(probe.id, LOCAL_MODEL)
        name = indexes.index_name(probe.id, LOCAL_MODEL)
        partition = await indexes.tenant_partition(conns["after"], probe.id)
        targets = {
            "before": (conns["before"], "memories", "public"),
            "after": (conns["after"], partition["partition"], partition["schema"]),
            "tenant_rows_only": (conns["before"], "memories_solo", "public"),
        }
        await conns["before"].execute(
            "CREATE TABLE memories_solo AS SELECT * FROM memories WHERE tenant_id = $1", probe.id
        )
        await conns["before"].execute("VACUUM ANALYZE memories_solo")
        result: dict[str, Any] = {"tenant_rows": probe.size}
        for side, (conn, table, schema) in targets.items():
            builds = [
                await timed_build(
                    conn, watchers[side], name=name, table=table, predicate=predicate, schema=schema
                )
                for _ in range(repeats)
            ]
            result[side] = {
                "table": table,
                "table_mb": await table_mb(conn, table),
                "table_rows": await conn.fetchval(f"SELECT count(*) FROM {table}"),  # noqa: S608
                "median_seconds": round(statistics.median(b["seconds"] for b in builds), 3),
                "builds": builds,
            }
            print(f"    {probe.size:>6} rows, {side:>16}: {result[side]['median_seconds']:7.2f} s"
                  f" over {result[side]['table_rows']:,} rows ({result[side]['table_mb']:,} MB),"
                  f" load {load_average()}", flush=True)  # fmt: skip
        await conns["before"].execute("DROP TABLE memories_solo")
        graph = result["tenant_rows_only"]["median_seconds"]
        result["scan_share_before"] = round(1 - graph / result["before"]["median_seconds"], 3)
        result["scan_share_after"] = round(1 - graph / result["after"]["median_seconds"], 3)
        result["speedup"] = round(
            result["before"]["median_seconds"] / result["after"]["median_seconds"], 2
        )
        step[next(k for k, v in PROBES.items() if v == probe.size)] = result
    return step


async def latency(
    conns: dict[str, asyncpg.Connection], tenants: dict[str, Tenant], seed: int, queries: int
) -> dict[str, Any]:
    """``opshub.memory.service.nearest`` for the same tenants and vectors on both databases, the
    sides alternating query by query (so load swings hit both alike), as the tenants' role with
    the tenant bound; exact below the threshold, through the tenant's own index (built and
    registered here, as the sweep does) for ``indexed``."""
    for name, tenant in tenants.items():
        if name != "indexed":
            continue
        for side, conn in conns.items():
            partition = await indexes.tenant_partition(conn, tenant.id) if side == "after" else None
            index = indexes.index_name(tenant.id, LOCAL_MODEL)
            await conn.execute(
                BUILD.format(
                    name=index,
                    table=partition["partition"] if partition else "memories",
                    predicate=indexes.tenant_predicate(tenant.id, LOCAL_MODEL),
                )
            )
            await conn.execute(
                "INSERT INTO memory_indexes (tenant_id, embedding_model, index_name, rows_at_build)"
                " VALUES ($1, $2, $3, $4)",
                tenant.id, LOCAL_MODEL, index, tenant.size,
            )  # fmt: skip
    samples: dict[str, dict[str, list[float]]] = {s: {n: [] for n in tenants} for s in conns}
    asked = {n: vectors(seed + 1, t)[:queries] for n, t in tenants.items()}
    for i in range(queries + 5):  # the first 5 of each warm up, unmeasured
        for name, tenant in tenants.items():
            for side in sorted(conns, reverse=bool(i % 2)):
                conn = conns[side]
                async with conn.transaction():
                    await conn.execute("SET LOCAL ROLE opshub_tenant")
                    await set_tenant(conn, tenant.id)
                    began = time.perf_counter()
                    await nearest(
                        conn, tenant_id=tenant.id, model=LOCAL_MODEL,
                        vector=asked[name][i % len(asked[name])].tolist(), limit=10,
                        indexed=name == "indexed",
                    )  # fmt: skip
                    took = time.perf_counter() - began
                if i >= 5:
                    samples[side][name].append(took * 1000)
    return {
        side: {
            name: {
                "tenant_rows": tenants[name].size,
                "queries": len(ms),
                "p50_ms": round(float(np.percentile(ms, 50)), 2),
                "p95_ms": round(float(np.percentile(ms, 95)), 2),
            }
            for name, ms in by_tenant.items()
        }
        for side, by_tenant in samples.items()
    } | {"load_1m_end": load_average()}


async def migrate_before(
    conns: dict[str, asyncpg.Connection], urls: dict[str, str], probes: list[Tenant]
) -> dict[str, Any]:
    """Register both probes' indexes in ``before``, then run 0019 on it."""
    conn = conns["before"]
    for probe in probes:
        name = indexes.index_name(probe.id, LOCAL_MODEL)
        await conn.execute(
            BUILD.format(
                name=name,
                table="memories",
                predicate=indexes.tenant_predicate(probe.id, LOCAL_MODEL),
            )
        )
        await conn.execute(
            "INSERT INTO memory_indexes (tenant_id, embedding_model, index_name, rows_at_build)"
            " VALUES ($1, $2, $3, $4)",
            probe.id, LOCAL_MODEL, name, probe.size,
        )  # fmt: skip
    rows = await conn.fetchval("SELECT count(*) FROM memories")
    await conn.close()
    load = load_average()
    began = time.perf_counter()
    await asyncio.to_thread(upgrade, urls["before"])
    took = time.perf_counter() - began
    conn = await connect(urls["before"])
    conns["before"] = conn
    placed = await conn.fetch(
        "SELECT c.relname, i.indrelid::regclass::text AS on_table FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'ix\\_memories\\_hnsw\\_%'"
    )
    return {
        "rows": rows,
        "seconds": round(took, 1),
        "load_1m_before": load,
        "load_1m_after": load_average(),
        "rows_after": await conn.fetchval("SELECT count(*) FROM memories"),
        "indexes_rebuilt_on": sorted(row["on_table"] for row in placed),
    }


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    owner = make_url(start_embedded_postgres(data_dir)).set(drivername="postgresql+asyncpg")
    conn = await asyncpg.connect(plain_dsn(owner.render_as_string(hide_password=False)))
    for setting, value in SERVER_SETTINGS.items():
        await conn.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
    await conn.close()
    stop_embedded_postgres(data_dir)
    owner = make_url(start_embedded_postgres(data_dir)).set(drivername="postgresql+asyncpg")
    conn = await asyncpg.connect(plain_dsn(owner.render_as_string(hide_password=False)))
    urls = {}
    for side in ("before", "after"):
        await conn.execute(f"CREATE DATABASE {side}")
        urls[side] = owner.set(database=side).render_as_string(hide_password=False)
    server = await conn.fetchval("SHOW server_version")
    await conn.close()
    await asyncio.to_thread(upgrade, urls["before"], "0018")
    await asyncio.to_thread(upgrade, urls["after"], "head")
    conns = {side: await connect(url) for side, url in urls.items()}
    watchers = {side: await connect(url) for side, url in urls.items()}
    watchers["tenant_rows_only"] = watchers["before"]
    vector_version = await conns["after"].fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    )
    partitions = await conns["after"].fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'memories'::regclass"
    )

    steps = [int(s) for s in args.steps.split(",")]
    probes = [Tenant(-1 - n, size, uuid.uuid4()) for n, size in enumerate(PROBES.values())]
    filler_rows = steps[-1] - sum(PROBES.values())
    sizes = zipf_sizes(filler_rows, max(1, steps[-1] * args.tenants_per_1000_rows // 1000))
    order = np.random.default_rng(args.seed).permutation(len(sizes))
    filler = [Tenant(int(no), sizes[no], uuid.uuid4()) for no in order]

    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "server": {"postgres": server, "pgvector": vector_version, **SERVER_SETTINGS},
        "partitions_after": partitions,
        "probes": dict(PROBES),
        "filler_tenants": len(filler),
        "largest_filler_tenant_rows": max(sizes),
        "repeats": args.repeats,
        "steps": {},
    }
    await copy_in(conns, args.seed, probes)
    loaded, at = sum(PROBES.values()), 0
    for target in steps:
        began = time.perf_counter()
        batch = []
        while loaded < target and at < len(filler):
            batch.append(filler[at])
            loaded += filler[at].size
            at += 1
        await copy_in(conns, args.seed, batch)
        for side_conn in conns.values():
            await side_conn.execute("VACUUM ANALYZE memories")
        print(f"  {loaded:,} rows ({at} tenants) loaded in {time.perf_counter() - began:.0f} s,"
              f" load {load_average()}", flush=True)  # fmt: skip
        step = await measure_step(conns, watchers, probes, args.repeats)
        step["rows"] = loaded
        step["tenants"] = at + len(probes)
        step["largest_partition_rows"] = await conns["after"].fetchval(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM memories GROUP BY tableoid) p"
        )
        report["steps"][str(target)] = step
    if args.latency:
        small = next(t for t in filler[:at] if 50 <= t.size <= 100)
        chosen = {"exact_small": small, "exact_threshold": probes[0], "indexed": probes[1]}
        report["latency"] = await latency(conns, chosen, args.seed, args.latency)
        print(f"  latency: {json.dumps(report['latency'])}", flush=True)
    if args.migrate:
        report["migration_0019"] = await migrate_before(conns, urls, probes)
        print(f"  0019 on {report['migration_0019']['rows']:,} rows:"
              f" {report['migration_0019']['seconds']} s", flush=True)  # fmt: skip
    for side_conn in (*conns.values(), *watchers.values()):
        if not side_conn.is_closed():
            await side_conn.close()
    report["load_1m_end"] = load_average()
    return report


def table(report: dict[str, Any]) -> str:
    lines = [
        "| rows | tenant | before: one table | after: its partition (rows) | tenant's rows alone"
        " | speedup |",
        "|---|---|---|---|---|---|",
    ]
    for rows, step in report["steps"].items():
        for probe in PROBES:
            r = step[probe]
            lines.append(
                f"| {int(rows):,} | {r['tenant_rows']:,} | {r['before']['median_seconds']:.2f} s"
                f" | {r['after']['median_seconds']:.2f} s ({r['after']['table_rows']:,})"
                f" | {r['tenant_rows_only']['median_seconds']:.2f} s | {r['speedup']}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="500000,1000000,2000000")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tenants-per-1000-rows", type=int, default=1)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--migrate", action="store_true")
    parser.add_argument("--latency", type=int, default=0, help="queries a tenant and side")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "memory-build.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opshub-memory-build-") as tmp:
        data_dir = Path(tmp) / "pg"
        try:
            report = asyncio.run(run(args, data_dir))
        finally:
            stop_embedded_postgres(data_dir)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
