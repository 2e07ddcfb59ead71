"""Messages between a hub's processes through PostgreSQL ``LISTEN/NOTIFY``, for the embedded
default without Redis: live task events, login attempts and credential changes.

Each process keeps one connection of its own that listens (not one of the pools', so their sizes
don't change) and sends through its pool: ``pg_notify`` in one statement for a whole batch. A
message carries its sender's id, and a process never hands its own messages to its handlers: it
acted on them already, in memory. PostgreSQL limits a payload to 8,000 bytes; callers keep under
``MAX_PAYLOAD``. When the listening connection drops it connects again each second; the
``on_gap`` callbacks run when it drops and when it is back, since whatever was sent in between
was missed (callers read it back from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Callable

import asyncpg
import structlog

from opshub.db.engine import QUERIES, dsn

log = structlog.get_logger(__name__)
MAX_PAYLOAD = 7_900 - 13  # PostgreSQL's 8,000 bytes, less the sender id and some headroom
RECONNECT_SECONDS = 1.0

Handler = Callable[[str], None]


class PgBus:
    def __init__(self, *, url: str, pool: asyncpg.Pool) -> None:
        self._dsn = dsn(url)
        self._pool = pool
        self.sender = uuid.uuid4().hex[:12]
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)
        self._on_gap: list[Callable[[], None]] = []
        self._conn: asyncpg.Connection | None = None
        self._dropped = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    def subscribe(self, channel: str, handler: Handler) -> None:
        """``handler`` gets the other processes' payloads on ``channel``; call before start()."""
        self._handlers[channel].append(handler)

    def on_gap(self, callback: Callable[[], None]) -> None:
        self._on_gap.append(callback)

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        """Listen now (a first failure is retried in the background, like a later loss)."""
        await self._connect()
        self._keeper = asyncio.create_task(self._keep_listening())

    def signed(self, payloads: list[str]) -> list[str]:
        """``payloads`` as ``notify`` sends them (behind this process's id), for a caller that
        sends them with a statement of its own (``pg_notify``)."""
        return [f"{self.sender}|{payload}" for payload in payloads]

    async def notify(self, channel: str, payloads: list[str]) -> None:
        """Send ``payloads`` (each ≤ MAX_PAYLOAD bytes) in one round trip; a failure is logged,
        since every caller has the database to fall back on."""
        if not payloads:
            return
        try:
            async with self._pool.acquire() as conn:
                await QUERIES["notify_many"].execute(
                    conn, channel=channel, sender=f"{self.sender}|", payloads=payloads
                )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("notify failed", channel=channel, error=type(exc).__name__)

    async def _connect(self) -> None:
        try:
            conn = await asyncpg.connect(
                self._dsn, server_settings={"application_name": "opshub-listener"}
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("bus listener not connected", error=type(exc).__name__)
            return
        try:
            for channel in self._handlers:
                await conn.add_listener(channel, self._received)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("bus listener not connected", error=type(exc).__name__)
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await conn.close(timeout=2)
            return
        conn.add_termination_listener(self._lost)
        self._conn = conn

    async def _keep_listening(self) -> None:
        while True:
            if self.listening:
                await self._dropped.wait()
                self._dropped.clear()
            await asyncio.sleep(RECONNECT_SECONDS)
            if not self.listening:
                await self._connect()
                if self.listening:
                    self._gap()

    def _lost(self, *_args: object) -> None:
        self._conn = None
        log.warning("bus listener lost; reconnecting")
        self._dropped.set()
        self._gap()

    def _gap(self) -> None:
        for callback in self._on_gap:
            callback()

    def _received(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        sender, _, body = payload.partition("|")
        if sender == self.sender:
            return
        for handler in self._handlers.get(channel, ()):
            try:
                handler(body)
            except Exception:  # one bad message must not stop the listener
                log.exception("bus message not handled", channel=channel)

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._lost)
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await conn.close(timeout=2)
