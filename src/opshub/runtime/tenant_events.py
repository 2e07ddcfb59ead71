"""Wake-ups for tenant-wide event streams: NOTIFY from the outbox, one listener a process.

Every domain event is an outbox row, and its insert notifies ``opshub_tenant_events`` with the
tenant's id. A stream sleeps until its tenant is named, then reads the rows after its cursor.
This needs nothing but PostgreSQL, so the embedded default streams without Redis, and every API
process sees what any worker, scheduler or other API process wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg
import structlog

log = structlog.get_logger(__name__)
CHANNEL = "opshub_tenant_events"


class TenantEventWakeups:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._watchers: defaultdict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._opening: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def watch(self, tenant_id: uuid.UUID) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the tenant has new domain events; the caller clears it."""
        await self._listen()
        wake = asyncio.Event()
        self._watchers[tenant_id].add(wake)
        try:
            yield wake
        finally:
            watchers = self._watchers[tenant_id]
            watchers.discard(wake)
            if not watchers:
                del self._watchers[tenant_id]

    async def _listen(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        if self._opening is None or self._opening.done():
            # A task of its own: a client that leaves while the listener opens (its request
            # cancelled) must not leave the connection taken from the pool and never returned.
            self._opening = asyncio.create_task(self._open())
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        try:
            conn = await self._pool.acquire()
        except (OSError, asyncpg.PostgresError) as exc:
            # Streams still poll on their keep-alive period until the next watcher retries.
            log.warning("tenant events listener not started", error=type(exc).__name__)
            return
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("tenant events listener not started", error=type(exc).__name__)
            await self._pool.release(conn)
            return
        conn.add_termination_listener(self._lost)
        self._conn = conn

    def _lost(self, *_args: object) -> None:
        self._conn = None
        # Whatever came while no one listened is read back by the woken streams.
        for watchers in self._watchers.values():
            for wake in watchers:
                wake.set()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            tenant_id = uuid.UUID(payload)
        except ValueError:
            return
        for wake in self._watchers.get(tenant_id, ()):
            wake.set()

    async def close(self) -> None:
        if self._opening is not None:
            await self._opening
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await self._conn.remove_listener(CHANNEL, self._notified)
            await self._pool.release(self._conn)
        self._conn = None
