"""The queue's operations on the tasks table: claim under a lease, renew, requeue, hand back.

These run as the owner, across tenants; everything a run does for its tenant runs under RLS.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from opshub.db.sql import Record
from opshub.runtime import queries


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
    """One statement, so one round trip: the claim holds its locks only while it runs."""
    async with pool.acquire() as conn:
        rows = await queries.claim_tasks(
            conn,
            worker_id=worker_id,
            limit=limit,
            lease_seconds=lease_seconds,
            tenant_limit=tenant_limit,
            backoff_seconds=backoff_seconds,
        )
    return Claim(
        tasks=[row for row in rows if row["claimed"]],
        expired=[row for row in rows if not row["claimed"]],
    )


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
