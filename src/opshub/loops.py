"""Background loops that stop when asked, and that nothing else stops for good.

``Task.cancel()`` delivers one CancelledError. A client library that catches it mid-call (seen
with the Redis and database clients while a relay delivered) leaves a ``while True`` loop running
for ever, and a shutdown that waits for it hangs. ``Task.cancelling()`` still counts the request,
so loops ask ``stop_requested()`` each round.

A loop that raises (the database restarted under it, Redis went away) is started again after a
backoff that doubles up to ``MAX_BACKOFF_SECONDS``: an outage pauses the loop, never ends it.
``Loops`` keeps a process's loops by name, so ``/readyz`` can say which ones have ended.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import structlog

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 15.0
log = structlog.get_logger(__name__)


def stop_requested() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_all(tasks: list[asyncio.Task[None]], *, grace_seconds: float = 5.0) -> bool:
    """Cancel ``tasks`` and wait for them; False if some outlived ``grace_seconds``."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return True
    _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
    return not pending


async def keep_running(name: str, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` until it returns (asked to stop); whenever it raises, start it again after a
    backoff. A body that ran longer than the longest backoff starts over from the first one."""
    delay = FIRST_BACKOFF_SECONDS
    while True:
        started = time.monotonic()
        try:
            await body()
            return
        except Exception as exc:  # whatever stopped this round, the loop outlives it
            if stop_requested():
                return
            if time.monotonic() - started > MAX_BACKOFF_SECONDS:
                delay = FIRST_BACKOFF_SECONDS
            log.warning(
                "background loop failed; restarting",
                loop=name,
                error=type(exc).__name__,
                retry_in_seconds=round(delay, 2),
            )
        # Processes that lost the same server don't all come back at the same instant.
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - not for secrets
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)


class Loops:
    """A process's background loops, by name, each under ``keep_running``.

    A component that stops its own loops in an order of its own (the worker) gets a ``nested``
    set: reported with the process's, stopped by the component.
    """

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._nested: list[Loops] = []

    def start(self, name: str, body: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        name = self._prefix + name
        task = asyncio.create_task(keep_running(name, body), name=name)
        self._tasks[name] = task
        return task

    def nested(self, prefix: str) -> Loops:
        loops = Loops(f"{self._prefix}{prefix}.")
        self._nested.append(loops)
        return loops

    def ended(self) -> list[str]:
        """The loops no longer running: stopped, or ended by a bug (an outage only pauses one)."""
        names = [name for name, task in self._tasks.items() if task.done()]
        for loops in self._nested:
            names += loops.ended()
        return sorted(names)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """This set's own loops, for the process to stop (nested sets are their owners' to)."""
        return list(self._tasks.values())
