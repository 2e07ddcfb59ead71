"""Background loops that stop when asked, even if a library swallowed the request.

``Task.cancel()`` delivers one CancelledError. A client library that catches it mid-call (seen
with the Redis and database clients while a relay delivered) leaves a ``while True`` loop running
for ever, and a shutdown that waits for it hangs. ``Task.cancelling()`` still counts the request,
so loops ask ``stop_requested()`` each round.
"""

from __future__ import annotations

import asyncio


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
