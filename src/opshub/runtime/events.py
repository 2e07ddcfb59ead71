"""A run's steps, stored in order and then published live, in batches.

Runs emit from CrewAI's handler threads and from the event loop; each event takes the next
sequence number of its task at once, and one writer task stores whatever has piled up in a single
round trip (group commit), then publishes each task's share. A busy worker writes many events per
round trip and an idle one writes each event as it comes, so batching adds no wait of its own.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from opshub.runtime.live import Batch, LiveEvents
from opshub.runtime.loops import stop_requested
from opshub.runtime.queue import QUERIES

log = structlog.get_logger(__name__)
Row = tuple[uuid.UUID, uuid.UUID, int, str, datetime, dict[str, Any]]


def _wire_ts(ts: datetime) -> str:
    """As the stored event reads back through the API (pydantic: UTC as ``Z``), so a live event
    and its replay carry the same text."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class RunEvents:
    """The event sequence of one task's run."""

    writer: TaskEventWriter
    tenant_id: uuid.UUID
    task_id: uuid.UUID
    last_seq: int
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def emit(self, type: str, **data: Any) -> None:
        """Thread-safe; returns at once. A closed run (abandoned by its worker) emits nothing."""
        fields = {key: value for key, value in data.items() if value is not None}
        with self._lock:
            if self.closed:
                return
            self.last_seq += 1
            row = (self.tenant_id, self.task_id, self.last_seq, type, datetime.now(UTC), fields)
        self.writer.submit(row)

    async def flush(self) -> None:
        await self.writer.flush()

    def close(self) -> None:
        """The task is another worker's now: its sequence numbers are no longer ours to use."""
        with self._lock:
            self.closed = True


class TaskEventWriter:
    def __init__(self, *, pool: asyncpg.Pool, live: LiveEvents) -> None:
        self._pool = pool
        self._live = live
        self._pending: list[Row] = []
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._written = asyncio.Condition()
        self._submitted = 0
        self._done = 0
        self._loop = asyncio.get_running_loop()

    async def open_run(self, *, tenant_id: uuid.UUID, task_id: uuid.UUID) -> RunEvents:
        """Numbering continues after a previous attempt's stored events."""
        async with self._pool.acquire() as conn:
            last = await conn.fetchval(QUERIES["last_seq"], task_id)
        return RunEvents(self, tenant_id, task_id, last)

    def submit(self, row: Row) -> None:
        with self._lock:
            self._pending.append(row)
            self._submitted += 1
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def flush(self) -> None:
        """Wait until everything submitted so far is stored and published."""
        with self._lock:
            target = self._submitted
        self._wake.set()
        async with self._written:
            await self._written.wait_for(lambda: self._done >= target)

    async def run(self) -> None:
        try:
            while not stop_requested():
                await self._wake.wait()
                self._wake.clear()
                await self._write_pending()
        finally:
            await self._write_pending()

    async def _write_pending(self) -> None:
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return
        while True:
            try:
                async with self._pool.acquire() as conn:
                    await conn.executemany(QUERIES["insert_events"], rows)
                break
            except (OSError, asyncpg.PostgresConnectionStatusError, asyncpg.InterfaceError) as exc:
                log.warning("task events waiting for the database", error=type(exc).__name__)
                await asyncio.sleep(0.5)
        by_task: dict[uuid.UUID, Batch] = {}
        for _tenant, task_id, seq, type_, ts, data in rows:
            by_task.setdefault(task_id, []).append(
                {"seq": seq, "type": type_, "ts": _wire_ts(ts), **data}
            )
        for task_id, batch in by_task.items():
            await self._live.publish(task_id, batch)
        async with self._written:
            self._done += len(rows)
            self._written.notify_all()
