"""The queue at internet scale: claims over 1M queued tasks of 10k tenants, no crews.

A throw-away embedded PostgreSQL 16 (pgserver) holds ``--tasks`` queued tasks (default 1M) of
``--tenants`` tenants (default 10k) whose sizes follow a power law (Zipf, alpha 1.1: a few tenants
with tens of thousands queued, thousands with one or two). ``--clients`` claim-only clients
(default 20, one connection each) loop as a worker's claim loop does: ``claim_next_tasks``
(opshub's own call, one statement: the expired-lease sweep, the fair claim, the tenants' turns
and the ``task.started`` outbox rows) for up to ``--batch`` tasks, then finish them at once with
the worker's own ``end_run`` statement. For ``--seconds`` it records:

- each claim call's latency as its client sees it (waits on locks included), p50/p95/p99, and
  the claims and tasks per second one PostgreSQL sustains;
- fairness: every ``--probe-every`` seconds a new tenant submits one task; how many tasks were
  claimed before it, against the tenants with queued work at that moment (one claim round is
  every such tenant's next task: at most that many may go first);
- the claim statement's own plan and time on an idle server (EXPLAIN ANALYZE), to tell the
  statement from the queueing in front of it.

The load average is recorded, since the machine is shared. Results: bench/results/queue_scale.json.

    .venv/bin/python bench/queue_scale.py [--tasks 1000000] [--tenants 10000] [--clients 20]
        [--batch 4] [--seconds 60] [--quick]

--quick: 50k tasks, 1,000 tenants, 15 s; prints, writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import make_url

from opshub.db.embedded import start_embedded_postgres, stop_embedded_postgres
from opshub.db.engine import DatabaseUrls
from opshub.db.migrate import migrate
from opshub.llm.metering import NO_LEDGER
from opshub.runtime import queries, queue

RESULTS = Path(__file__).with_name("results") / "queue_scale.json"
TENANT_LIMIT = 16  # OPSHUB_TENANT_MAX_RUNNING_TASKS' default
LEASE_SECONDS = 60.0
COPY_COLUMNS = ("id", "tenant_id", "crew", "input", "priority", "created_at")


def zipf_sizes(total: int, tenants: int, alpha: float) -> list[int]:
    weights = [1 / (rank**alpha) for rank in range(1, tenants + 1)]
    scale = total / sum(weights)
    sizes = [max(1, round(w * scale)) for w in weights]
    sizes[0] += total - sum(sizes)  # the largest tenant absorbs the rounding
    return sizes


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load() -> float:
    return os.getloadavg()[0]


async def seed(owner: asyncpg.Pool, sizes: list[int], seed_: int) -> list[uuid.UUID]:
    rng = random.Random(seed_)
    tenant_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in sizes]
    async with owner.acquire() as conn:
        await conn.copy_records_to_table(
            "tenants",
            records=[(t, f"queue-bench-{n}") for n, t in enumerate(tenant_ids)],
            columns=("id", "name"),
        )
        start = time.time() - 86_400
        batch: list[tuple[Any, ...]] = []
        for tenant_id, size in zip(tenant_ids, sizes, strict=True):
            for i in range(size):
                # Mostly priority 0, some urgent work, created over the last day.
                priority = 5 if rng.random() < 0.05 else 0
                created = start + rng.random() * 86_000
                batch.append((uuid.uuid4(), tenant_id, "operations", f"task {i}", priority,
                              datetime.fromtimestamp(created, UTC)))  # fmt: skip
                if len(batch) >= 50_000:
                    await conn.copy_records_to_table("tasks", records=batch, columns=COPY_COLUMNS)
                    batch.clear()
        if batch:
            await conn.copy_records_to_table("tasks", records=batch, columns=COPY_COLUMNS)
        await conn.execute("VACUUM ANALYZE tasks")
        await conn.execute("VACUUM ANALYZE tenants")
    return tenant_ids


@dataclass
class Probe:
    tenant_id: uuid.UUID
    task_id: uuid.UUID
    tenants_waiting: int
    submitted_after: int  # tasks claimed before it was submitted
    claimed_before_it: int | None = None  # tasks claimed between its submission and its claim


@dataclass
class Run:
    claim_ms: list[float] = field(default_factory=list)
    claimed: int = 0
    empty_claims: int = 0
    order: int = 0  # tasks claimed so far, across clients
    probes: dict[uuid.UUID, Probe] = field(default_factory=dict)


async def client(owner: asyncpg.Pool, run: Run, no: int, *, batch: int, until: float) -> None:
    worker_id = f"queue-bench-{no}"
    while time.monotonic() < until:
        started = time.perf_counter()
        claim = await queue.claim_next_tasks(
            owner,
            worker_id=worker_id,
            limit=batch,
            lease_seconds=LEASE_SECONDS,
            backoff_seconds=5.0,
            tenant_limit=TENANT_LIMIT,
        )
        run.claim_ms.append((time.perf_counter() - started) * 1000)
        if not claim.tasks:
            run.empty_claims += 1
            await asyncio.sleep(0.01)
            continue
        for task in claim.tasks:
            probe = run.probes.get(task["id"])
            if probe is not None:
                probe.claimed_before_it = run.order - probe.submitted_after
            run.order += 1
        run.claimed += len(claim.tasks)
        async with owner.acquire() as conn, conn.transaction():
            for task in claim.tasks:
                last = queries.TaskEventRow(
                    task["tenant_id"],
                    task["id"],
                    task["last_seq"] + 1,
                    "task.succeeded",
                    datetime.now(UTC),
                    {},
                )
                await queries.end_run(
                    conn, tenant_id=task["tenant_id"], worker_id=worker_id, status="succeeded",
                    result=None, error=None, input_tokens=0, output_tokens=0,
                    cost_usd=Decimal(0), billed_to=None, remember=False, usage=NO_LEDGER,
                    last_event=last, channel="", notices=[],
                )  # fmt: skip


async def prober(owner: asyncpg.Pool, run: Run, *, every: float, until: float) -> None:
    while time.monotonic() + every < until:
        await asyncio.sleep(every)
        tenant_id, task_id = uuid.uuid4(), uuid.uuid4()
        async with owner.acquire() as conn:
            waiting = await conn.fetchval(
                "SELECT count(DISTINCT tenant_id) FROM tasks WHERE status = 'queued'"
            )
            await conn.execute(
                "INSERT INTO tenants (id, name) VALUES ($1, 'queue-bench-probe')", tenant_id
            )
            run.probes[task_id] = Probe(
                tenant_id, task_id, tenants_waiting=waiting, submitted_after=run.order
            )
            await conn.execute(
                "INSERT INTO tasks (id, tenant_id, crew, input) VALUES ($1, $2, 'operations', 'p')",
                task_id,
                tenant_id,
            )


async def explain_claim(owner: asyncpg.Pool, batch: int) -> dict[str, Any]:
    async with owner.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            started = time.perf_counter()
            claim = queries.QUERIES["claim_tasks"]
            args = {
                "worker_id": "explain",
                "limit": batch,
                "lease_seconds": LEASE_SECONDS,
                "tenant_limit": TENANT_LIMIT,
                "backoff_seconds": 5.0,
            }
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + claim.text, *claim.args(args))
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            await tr.rollback()
    lines = [row[0] for row in plan]
    return {"wall_ms": round(elapsed, 2), "plan_tail": lines[-3:]}


async def measure(urls: DatabaseUrls, args: argparse.Namespace) -> dict[str, Any]:
    dsn = urls.owner.replace("+asyncpg", "")
    owner = await asyncpg.create_pool(dsn, min_size=args.clients + 2, max_size=args.clients + 2)
    try:
        sizes = zipf_sizes(args.tasks, args.tenants, args.alpha)
        seeded = time.perf_counter()
        await seed(owner, sizes, args.seed)
        seed_s = time.perf_counter() - seeded
        idle = [await explain_claim(owner, args.batch) for _ in range(3)]
        run = Run()
        until = time.monotonic() + args.seconds
        began = time.perf_counter()
        await asyncio.gather(
            *(client(owner, run, n, batch=args.batch, until=until) for n in range(args.clients)),
            prober(owner, run, every=args.probe_every, until=until),
        )
        elapsed = time.perf_counter() - began
    finally:
        await owner.close()
    probes = [p for p in run.probes.values() if p.claimed_before_it is not None]
    return {
        "tasks": args.tasks,
        "tenants": args.tenants,
        "largest_tenant": sizes[0],
        "tenants_with_one_task": sum(1 for s in sizes if s == 1),
        "clients": args.clients,
        "batch": args.batch,
        "seconds": round(elapsed, 1),
        "seed_seconds": round(seed_s, 1),
        "claim_calls": len(run.claim_ms),
        "empty_claims": run.empty_claims,
        "claim_ms": {
            "p50": round(percentile(run.claim_ms, 0.50), 2),
            "p95": round(percentile(run.claim_ms, 0.95), 2),
            "p99": round(percentile(run.claim_ms, 0.99), 2),
        },
        "claims_per_s": round(len(run.claim_ms) / elapsed, 1),
        "tasks_claimed_per_s": round(run.claimed / elapsed, 1),
        "idle_claim_statement": idle,
        "fairness": {
            "probes": len(probes),
            "probes_unclaimed": len(run.probes) - len(probes),
            "claimed_before_probe": [p.claimed_before_it for p in probes],
            "tenants_waiting_at_probe": [p.tenants_waiting for p in probes],
            "within_one_round": sum(
                p.claimed_before_it is not None and p.claimed_before_it <= p.tenants_waiting
                for p in probes
            ),
        },
        "load_1m": round(load(), 2),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--alpha", type=float, default=1.1)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--probe-every", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.tenants, args.seconds = 50_000, 1_000, 15.0

    # Short path: the server's unix socket lives in it.
    data_dir = Path(tempfile.mkdtemp(prefix="ohq-", dir="/tmp"))
    try:
        owner = make_url(start_embedded_postgres(data_dir)).set(drivername="postgresql+asyncpg")
        urls = DatabaseUrls(
            owner=owner.render_as_string(hide_password=False),
            app=owner.set(username="opshub_app").render_as_string(hide_password=False),
        )
        asyncio.run(migrate(urls))
        result = asyncio.run(measure(urls, args))
    finally:
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    fairness = result["fairness"]
    print(json.dumps({k: v for k, v in result.items() if k != "fairness"}, indent=2))
    print(
        f"fairness: {fairness['within_one_round']}/{fairness['probes']} claimed probes within one "
        f"round ({fairness['probes_unclaimed']} not yet claimed at the end); claimed before them "
        f"{fairness['claimed_before_probe']} with {fairness['tenants_waiting_at_probe']} tenants "
        "waiting"
    )
    if not args.quick:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
