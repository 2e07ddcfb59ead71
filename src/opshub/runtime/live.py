"""Live task events: a run's steps reach every API process that has a client watching the task.

With Redis, each task has a pub/sub channel and each API process one connection that subscribes
to the channels its clients watch (500 watchers cost one connection, not 500). Without Redis (the
embedded default) the worker hands events to its own process's watchers in memory and to the
other processes' through PostgreSQL NOTIFY (``opshub.db.bus``). Events are published
after they are stored, so a client that reads the stored events and then listens misses nothing.
While Redis (or the NOTIFY listener) is away, ``polling()`` says so and watchers read the stored
events every second instead; each watcher is woken (an empty batch) when it goes away and when it
is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

import asyncpg
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from opshub.db.bus import MAX_PAYLOAD, PgBus
from opshub.db.engine import tenant_transaction
from opshub.loops import stop_requested
from opshub.tasks import service as tasks_service

log = structlog.get_logger(__name__)
Batch = list[dict[str, Any]]


def channel(task_id: uuid.UUID) -> str:
    return f"opshub:task-events:{task_id}"


Notices = tuple[str, list[str]]
"""A NOTIFY channel and its messages, for the statement that stores the events they carry."""
NO_NOTICES: Notices = ("", [])


class LiveEvents(Protocol):
    async def publish(self, batches: dict[uuid.UUID, Batch], *, notified: bool = False) -> None:
        """Each task's batch to its watchers; the event writer's group commit sends many.
        ``notified``: the ``notices`` for these batches went out with the statement that
        stored them, so only what they don't carry is left to send."""

    def notices(self, batches: dict[uuid.UUID, Batch]) -> Notices:
        """What carries the batches to other processes by NOTIFY, sent by the statement that
        stores them: at its commit, so never before they are stored, in one round trip."""

    def watch(
        self, task_id: uuid.UUID
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[Batch]]: ...

    def polling(self) -> bool:
        """True while live messages may not arrive: watchers read the database meanwhile."""


class _Watchers:
    def __init__(self) -> None:
        self.queues: defaultdict[uuid.UUID, set[asyncio.Queue[Batch]]] = defaultdict(set)

    def deliver(self, task_id: uuid.UUID, events: Batch) -> None:
        for queue in self.queues.get(task_id, ()):
            queue.put_nowait(events)

    def wake_all(self) -> None:
        for queues in self.queues.values():
            for queue in queues:
                queue.put_nowait([])


class LocalLiveEvents:
    """One process: the worker's batches go straight to the watching clients' queues."""

    def __init__(self) -> None:
        self._watchers = _Watchers()

    async def publish(self, batches: dict[uuid.UUID, Batch], *, notified: bool = False) -> None:  # noqa: ARG002 - the protocol's
        for task_id, events in batches.items():
            self._watchers.deliver(task_id, events)

    def notices(self, batches: dict[uuid.UUID, Batch]) -> Notices:  # noqa: ARG002 - the protocol's
        return NO_NOTICES

    def deliver(self, task_id: uuid.UUID, events: Batch) -> None:
        self._watchers.deliver(task_id, events)

    def watched(self, task_id: uuid.UUID) -> bool:
        return bool(self._watchers.queues.get(task_id))

    def wake_all(self) -> None:
        self._watchers.wake_all()

    def polling(self) -> bool:
        return False

    @contextlib.asynccontextmanager
    async def watch(self, task_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[Batch]]:
        queue: asyncio.Queue[Batch] = asyncio.Queue()
        self._watchers.queues[task_id].add(queue)
        try:
            yield queue
        finally:
            watchers = self._watchers.queues[task_id]
            watchers.discard(queue)
            if not watchers:
                del self._watchers.queues[task_id]


class PgLiveEvents:
    """Without Redis, several processes: this process's watchers at once, the others' by NOTIFY.

    A batch too large for one message goes as several; a single event too large goes as an
    empty batch, which sends its watchers to the stored events.
    """

    def __init__(self, bus: PgBus) -> None:
        self._bus = bus
        self._local = LocalLiveEvents()
        bus.subscribe(CHANNEL, self._received)
        bus.on_gap(self._local.wake_all)

    async def publish(self, batches: dict[uuid.UUID, Batch], *, notified: bool = False) -> None:
        await self._local.publish(batches)
        if not notified:
            await self._bus.notify(CHANNEL, _all_messages(batches))

    def notices(self, batches: dict[uuid.UUID, Batch]) -> Notices:
        return CHANNEL, self._bus.signed(_all_messages(batches))

    def polling(self) -> bool:
        return not self._bus.listening

    def watch(
        self, task_id: uuid.UUID
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[Batch]]:
        return self._local.watch(task_id)

    def _received(self, body: str) -> None:
        task, _, events = body.partition("|")
        task_id = uuid.UUID(task)
        if self._local.watched(task_id):  # every process hears every run's events
            self._local.deliver(task_id, orjson.loads(events))


CHANNEL = "opshub_live"


def _all_messages(batches: dict[uuid.UUID, Batch]) -> list[str]:
    return [message for t, events in batches.items() for message in _messages(t, events)]


def _messages(task_id: uuid.UUID, events: Batch) -> list[str]:
    """``task_id|[events]`` payloads, each within the NOTIFY limit, in order."""
    head = f"{task_id}|"
    room = MAX_PAYLOAD - len(head) - 2
    messages: list[str] = []
    chunk: list[bytes] = []

    def flush() -> None:
        messages.append(head + "[" + b",".join(chunk).decode() + "]")
        chunk.clear()

    for event in events:
        encoded = orjson.dumps(event)
        if len(encoded) > room:
            if chunk:
                flush()
            flush()  # empty: its watchers read this one from the database
            continue
        if chunk and sum(map(len, chunk)) + len(chunk) + len(encoded) > room:
            flush()
        chunk.append(encoded)
    if chunk:
        flush()
    return messages


class RedisLiveEvents:
    """Redis pub/sub, one subscriber connection per process, channels joined on demand."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._watchers = _Watchers()
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._changed = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._away = False

    def polling(self) -> bool:
        return self._away

    def _set_away(self, away: bool) -> None:
        if away != self._away:
            log.warning("live events from the database" if away else "live events from Redis again")
            self._away = away
            self._watchers.wake_all()

    def notices(self, batches: dict[uuid.UUID, Batch]) -> Notices:  # noqa: ARG002 - the protocol's
        return NO_NOTICES  # Redis carries them all

    async def publish(self, batches: dict[uuid.UUID, Batch], *, notified: bool = False) -> None:  # noqa: ARG002 - the protocol's
        """One round trip for them all: a busy worker's loop resumes once, not once a task."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for task_id, events in batches.items():
                    pipe.publish(channel(task_id), orjson.dumps(events))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # Watchers fall back to reading the stored events; the run goes on.
            log.warning("live events not published", error=type(exc).__name__)

    @contextlib.asynccontextmanager
    async def watch(self, task_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[Batch]]:
        queue: asyncio.Queue[Batch] = asyncio.Queue()
        async with self._changed:
            first = not self._watchers.queues.get(task_id)
            self._watchers.queues[task_id].add(queue)
            if first:
                try:
                    await self._pubsub.subscribe(channel(task_id))
                except (RedisError, OSError):
                    self._set_away(True)  # the listener subscribes it once Redis is back
            if self._listener is None or self._listener.done():
                self._listener = asyncio.create_task(self._listen())
        try:
            yield queue
        finally:
            async with self._changed:
                watchers = self._watchers.queues[task_id]
                watchers.discard(queue)
                if not watchers:
                    del self._watchers.queues[task_id]
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.unsubscribe(channel(task_id))

    async def _listen(self) -> None:
        while not stop_requested():
            if self._away:
                await asyncio.sleep(0.5)
                self._set_away(not await self._resubscribe())
                continue
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("live events listener reconnecting", error=type(exc).__name__)
                self._set_away(True)
                continue
            if message is None:
                continue
            name = message["channel"]
            name = name.decode() if isinstance(name, bytes) else name
            task_id = uuid.UUID(name.rpartition(":")[2])
            self._watchers.deliver(task_id, orjson.loads(message["data"]))

    async def _resubscribe(self) -> bool:
        """Join every watched channel again; False while Redis doesn't answer."""
        try:
            channels = [channel(task_id) for task_id in self._watchers.queues]
            if channels:
                await self._pubsub.subscribe(*channels)
            else:
                await self._redis.ping()
        except (RedisError, OSError):
            return False
        return True

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._listener
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()


async def publish_stored(
    live: LiveEvents, pool: asyncpg.Pool, *, tenant_id: uuid.UUID, task_id: uuid.UUID, after: int
) -> None:
    """Send live watchers the task's events stored after ``after`` (written outside a run:
    an action's approval or outcome, the task's settlement). Call it after their commit."""
    async with tenant_transaction(pool, tenant_id) as conn:
        events = await tasks_service.events_after(
            conn, tenant_id=tenant_id, task_id=task_id, after=after
        )
    if events:
        await live.publish({task_id: [event.model_dump(mode="json") for event in events]})
