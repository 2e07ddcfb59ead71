"""``opshub scheduler``: fires due schedules as tasks, exactly once however many schedulers run."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from opshub.db.engine import transaction
from opshub.loops import stop_requested
from opshub.memory import indexes as memory_indexes
from opshub.schedules import service as schedules_service

log = structlog.get_logger(__name__)


class Scheduler:
    def __init__(self, *, owner_pool: asyncpg.Pool, poll_seconds: float = 1.0) -> None:
        self._pool = owner_pool
        self._poll_seconds = poll_seconds

    async def fire_due(self) -> int:
        async with transaction(self._pool) as conn:
            fired = await schedules_service.fire_due(conn)
        for task in fired:
            log.info("schedule fired", schedule=str(task.schedule_id), task=str(task.id))
        return len(fired)

    async def run(self) -> None:
        while not stop_requested():
            try:
                await self.fire_due()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("scheduler waiting for the database", error=type(exc).__name__)
            await asyncio.sleep(self._poll_seconds)


async def sweep_memory_indexes(
    owner_pool: asyncpg.Pool, *, threshold: int, every_seconds: float
) -> None:
    """Build the memory indexes that are due: a write requests its tenant's build at once, this
    catches the builds a crashed process never finished and drops those of erased tenants."""
    while not stop_requested():
        try:
            await memory_indexes.maintain(owner_pool, threshold=threshold)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("memory index sweep failed", error=type(exc).__name__)
        await asyncio.sleep(every_seconds)
