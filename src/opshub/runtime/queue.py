"""The queue's operations on the tasks table: claim under a lease, renew, requeue, hand back.

These run as the owner, across tenants; everything a run does for its tenant runs under RLS.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from opshub.db.sql import Record, load_queries

QUERIES = load_queries(Path(__file__).with_name("queue.sql"))
CLAIM_LOCK = 0x6F707368_75620003


@dataclass(frozen=True)
class Claim:
    tasks: list[Record]
    """Claimed now: status running, leased to the worker, ``attempt`` counted."""
    expired: list[Record]
    """Tasks of dead workers found on the way: requeued with backoff, or failed/cancelled."""


async def claim_next_tasks(
    pool: asyncpg.Pool,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    backoff_seconds: float,
    tenant_limit: int,
) -> Claim:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", CLAIM_LOCK)
        expired = await conn.fetch(QUERIES["requeue_expired"], backoff_seconds)
        tasks = await conn.fetch(
            QUERIES["claim_tasks"], worker_id, limit, lease_seconds, tenant_limit
        )
        if tasks:
            await conn.execute(QUERIES["started_events"], [task["id"] for task in tasks])
            await conn.execute(QUERIES["mark_served"], list({task["tenant_id"] for task in tasks}))
    return Claim(tasks=tasks, expired=expired)


async def renew_leases(
    pool: asyncpg.Pool, *, task_ids: list[uuid.UUID], worker_id: str, lease_seconds: float
) -> dict[uuid.UUID, bool]:
    """Task id → cancel requested, for the tasks still this worker's."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(QUERIES["renew_leases"], task_ids, worker_id, lease_seconds)
    return {row["id"]: row["cancel_requested"] for row in rows}


async def release(pool: asyncpg.Pool, *, task_ids: list[uuid.UUID], worker_id: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(QUERIES["release"], task_ids, worker_id)
