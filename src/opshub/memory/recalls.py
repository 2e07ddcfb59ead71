"""How often each memory was recalled by runs, and when last: counted in the worker, written in
one statement every few seconds.

A recall is otherwise a write: each run's recall updated the up to 20 memories it found, and in
PostgreSQL an updated row is a new copy of it, its 384-float vector included (~2 KB of WAL each,
and a dead row for vacuum). Runs of one tenant recall the same memories over and over, so a
worker adds them up and writes each memory once per interval, with its count and latest time.
The counts are statistics a reader sees (``recall_count``, ``last_recalled_at``), a few seconds
late; those of a worker killed before it wrote them are lost, a stopping worker writes them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from opshub.loops import stop_requested
from opshub.memory.service import QUERIES

INTERVAL_SECONDS = 2.0


@dataclass
class _Recalls:
    times: int
    last_at: datetime


class RecallTally:
    def __init__(self, *, owner_pool: asyncpg.Pool, interval_seconds: float = INTERVAL_SECONDS):
        self._pool = owner_pool
        self._interval = interval_seconds
        self._recalls: dict[tuple[uuid.UUID, uuid.UUID], _Recalls] = {}

    @property
    def pending(self) -> int:
        """Memories whose recalls are counted here and not yet written."""
        return len(self._recalls)

    def add(self, *, tenant_id: uuid.UUID, memory_ids: Iterable[uuid.UUID]) -> None:
        now = datetime.now(UTC)
        for memory_id in memory_ids:
            counted = self._recalls.get((tenant_id, memory_id))
            if counted is None:
                self._recalls[tenant_id, memory_id] = _Recalls(1, now)
            else:
                counted.times += 1
                counted.last_at = now

    async def run(self) -> None:
        try:
            while not stop_requested():
                await asyncio.sleep(self._interval)
                await self.flush()
        finally:
            await self.flush()

    async def flush(self) -> None:
        """Write the recalls counted so far; kept for the next try if that fails."""
        recalls, self._recalls = self._recalls, {}
        if not recalls:
            return
        try:
            async with self._pool.acquire() as conn:
                await QUERIES["count_recalls"].execute(
                    conn,
                    tenant_ids=[tenant_id for tenant_id, _ in recalls],
                    memory_ids=[memory_id for _, memory_id in recalls],
                    times=[counted.times for counted in recalls.values()],
                    last_ats=[counted.last_at for counted in recalls.values()],
                )
        except BaseException:
            for key, counted in recalls.items():
                later = self._recalls.get(key)
                if later is not None:
                    counted.times += later.times
                    counted.last_at = later.last_at
                self._recalls[key] = counted
            raise
