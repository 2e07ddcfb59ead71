"""Delivers the outbox to the Redis Stream ``opshub.events``: in order, once each, when Redis is up.

One relay works at a time (a PostgreSQL advisory lock), oldest event first. Each event goes to
Redis through one Lua script that records a delivery key and appends to the stream atomically;
the database marks it delivered after. A relay that dies between the two sends the event again
next time, and the delivery key turns that second send into nothing: once each, never lost.
With Redis down, events wait in PostgreSQL and the changes that made them go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from opshub.db import locks
from opshub.loops import stop_requested
from opshub.outbox import service as outbox
from opshub.outbox.service import STREAM

RELAY_LOCK = 0x6F707368_75620002
DELIVERY_KEY_TTL = timedelta(days=7)
log = structlog.get_logger(__name__)

_DELIVER = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'event_type', ARGV[2], 'tenant_id', ARGV[3],
             'data', ARGV[4], 'ts', ARGV[5])
  return 1
end
return 0
"""


class OutboxRelay:
    def __init__(self, *, owner_pool: asyncpg.Pool, redis: Redis, batch: int = 200) -> None:
        self._pool = owner_pool
        self._redis = redis
        self._batch = batch
        self._deliver = redis.register_script(_DELIVER)
        self._wake = asyncio.Event()

    async def deliver_pending(self) -> int:
        """Deliver everything waiting; 0 when another relay holds the lock."""
        async with self._pool.acquire() as conn:
            if not await locks.try_lock(conn, key=RELAY_LOCK):
                return 0
            try:
                return await self._drain(conn)
            finally:
                await locks.unlock(conn, key=RELAY_LOCK)

    async def _drain(self, conn: asyncpg.Connection) -> int:
        delivered = 0
        while rows := await outbox.undelivered(conn, limit=self._batch):
            for row in rows:
                await self._deliver(
                    keys=[f"opshub:outbox:delivered:{row['id']}", STREAM],
                    args=[
                        int(DELIVERY_KEY_TTL.total_seconds()),
                        row["event_type"],
                        str(row["tenant_id"]),
                        orjson.dumps(row["data"]).decode(),
                        row["created_at"].isoformat(),
                    ],
                )
            await outbox.mark_delivered(conn, event_ids=[row["id"] for row in rows])
            delivered += len(rows)
        return delivered

    async def run(self, *, poll_seconds: float = 1.0) -> None:
        """Deliver as events arrive (NOTIFY from the outbox), polling as a fallback."""
        listener = await self._pool.acquire()
        try:
            await listener.add_listener("opshub_outbox", self._notified)
            while not stop_requested():
                try:
                    await self.deliver_pending()
                except (RedisError, OSError) as exc:
                    # Redis is away: the events wait in PostgreSQL; try again shortly.
                    log.warning("outbox relay waiting for Redis", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll_seconds)
                self._wake.clear()
        finally:
            if not listener.is_closed():  # else lost with the database: nothing to undo
                await listener.remove_listener("opshub_outbox", self._notified)
            await self._pool.release(listener)

    def _notified(self, *_args: object) -> None:
        self._wake.set()
