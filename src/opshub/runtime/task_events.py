"""A run's steps, stored in order and then published live, in batches.

Runs emit from CrewAI's handler threads and from the event loop; each event takes the next
sequence number of its task at once, and one writer task stores whatever has piled up in a single
round trip (group commit), then publishes every task's share in one more (without Redis, the
NOTIFYs go with the storing statement: one round trip in all). A busy worker writes
many events per round trip and an idle one writes each event as it comes, so batching adds no
wait of its own.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from opshub.loops import stop_requested
from opshub.runtime import queries
from opshub.runtime.live import Batch, LiveEvents
from opshub.tasks.models import EventType

log = structlog.get_logger(__name__)
Row = queries.TaskEventRow
PASSING = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.InsufficientResourcesError,  # too many connections, out of memory or disk
)
"""What the writer waits out, keeping the batch: the database away, starting or overloaded."""


def _wire_ts(ts: datetime) -> str:
    """As the stored event reads back through the API (pydantic: UTC as ``Z``), so a live event
    and its replay carry the same text."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def live_event(row: Row) -> dict[str, Any]:
    """A stored event as its watchers get it live."""
    return {"seq": row.seq, "type": row.type, "ts": _wire_ts(row.ts), **row.data}


@dataclass
class RunEvents:
    """The event sequence of one task's run; numbered by its writer."""

    writer: TaskEventWriter
    tenant_id: uuid.UUID
    task_id: uuid.UUID
    last_seq: int
    closed: bool = False

    def emit(self, type: str, **data: Any) -> None:
        """Thread-safe; returns at once. A closed run (abandoned by its worker) emits nothing."""
        self.writer.submit(
            self, type, {key: value for key, value in data.items() if value is not None}
        )

    async def flush(self) -> None:
        await self.writer.flush()

    def close(self) -> None:
        """The task is another worker's now: its sequence numbers are no longer ours to use."""
        self.writer.close(self)

    def end(self) -> int:
        """The number of the run's last event, which its ending stores itself (with the task's
        final state, in one statement); nothing is emitted after it. Call it once the earlier
        events are flushed."""
        return self.writer.end(self)


class TaskEventWriter:
    def __init__(self, *, pool: asyncpg.Pool, live: LiveEvents) -> None:
        self._pool = pool
        self._live = live
        self._pending: list[Row] = []
        self._last_pending: dict[uuid.UUID, Row] = {}
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._written = asyncio.Condition()
        self._submitted = 0
        self._done = 0
        self._loop = asyncio.get_running_loop()
        self._wake_sent = False  # a wake-up from another thread is on its way to the loop

    def open_run(self, *, tenant_id: uuid.UUID, task_id: uuid.UUID, last_seq: int) -> RunEvents:
        """``last_seq``: numbering continues after a previous attempt's stored events."""
        return RunEvents(self, tenant_id, task_id, last_seq)

    def submit(self, run: RunEvents, type: str, fields: dict[str, Any]) -> None:
        with self._lock:
            if run.closed:
                return
            last = self._last_pending.get(run.task_id)
            if type == EventType.token and last is not None and last.type == EventType.token:
                # Tokens that arrive faster than a round trip travel as one event: a streaming
                # crew would otherwise make one row and one message per token.
                last.data["text"] = last.data.get("text", "") + fields.get("text", "")
                return
            run.last_seq += 1
            row = Row(
                tenant_id=run.tenant_id,
                task_id=run.task_id,
                seq=run.last_seq,
                type=type,
                ts=datetime.now(UTC),
                data=fields,
            )
            self._pending.append(row)
            self._last_pending[run.task_id] = row
            self._submitted += 1
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not self._loop:
                # One wake-up in flight is enough: crews' threads emit a token event each, and
                # each call_soon_threadsafe is a write to the loop's self-pipe and a turn of it.
                if self._wake_sent:
                    return
                self._wake_sent = True
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        with self._lock:
            self._wake_sent = False
        self._wake.set()

    def close(self, run: RunEvents) -> None:
        with self._lock:
            run.closed = True

    def end(self, run: RunEvents) -> int:
        with self._lock:
            run.closed = True
            run.last_seq += 1
            return run.last_seq

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
            self._last_pending.clear()
        if not rows:
            return
        by_task: dict[uuid.UUID, Batch] = {}
        for row in rows:
            by_task.setdefault(row.task_id, []).append(live_event(row))
        # Without Redis, the other processes' share travels with the statement storing them.
        channel, notices = self._live.notices(by_task)
        while True:
            try:
                async with self._pool.acquire() as conn:
                    await queries.store_events(conn, events=rows, channel=channel, notices=notices)
                break
            except PASSING as exc:
                log.warning("task events waiting for the database", error=type(exc).__name__)
                await asyncio.sleep(0.5)
            except Exception:
                # A batch refused for good must not stop this writer: every run's ending waits
                # for its events to be stored.
                log.exception("task events dropped", events=len(rows))
                by_task = {}
                break
        if by_task:
            await self._live.publish(by_task, notified=True)
        async with self._written:
            self._done += len(rows)
            self._written.notify_all()
