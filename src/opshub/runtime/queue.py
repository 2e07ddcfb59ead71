"""The queue's operations on the tasks table: claim under a lease, renew, requeue, hand back.

These run as the owner, across tenants; everything a run does for its tenant runs under RLS.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from opshub.db import locks
from opshub.db.sql import Record
from opshub.runtime import queries

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
        await locks.lock_transaction(conn, key=CLAIM_LOCK)
        expired = await queries.requeue_expired(conn, backoff_seconds=backoff_seconds)
        tasks = await queries.claim_tasks(
            conn,
            worker_id=worker_id,
            limit=limit,
            lease_seconds=lease_seconds,
            tenant_limit=tenant_limit,
        )
        if tasks:
            await queries.started_events(conn, task_ids=[task["id"] for task in tasks])
            await queries.mark_served(conn, tenant_ids=list({task["tenant_id"] for task in tasks}))
    return Claim(tasks=tasks, expired=expired)


async def renew_leases(
    pool: asyncpg.Pool, *, task_ids: list[uuid.UUID], worker_id: str, lease_seconds: float
) -> dict[uuid.UUID, bool]:
    """Task id → cancel requested, for the tasks still this worker's."""
    async with pool.acquire() as conn:
        rows = await queries.renew_leases(
            conn, task_ids=task_ids, worker_id=worker_id, lease_seconds=lease_seconds
        )
    return {row["id"]: row["cancel_requested"] for row in rows}


async def release(pool: asyncpg.Pool, *, task_ids: list[uuid.UUID], worker_id: str) -> None:
    async with pool.acquire() as conn:
        await queries.release(conn, task_ids=task_ids, worker_id=worker_id)
