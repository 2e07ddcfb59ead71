"""Background loops stop on request even when a call inside them swallows the cancellation."""

from __future__ import annotations

import asyncio
import contextlib

from opshub.loops import stop_all, stop_requested


async def swallowing_call() -> None:
    """Like a client library that catches CancelledError mid-call and carries on."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0.05)


async def loop_until_stopped(round_done: asyncio.Event) -> None:
    while not stop_requested():
        await swallowing_call()
        round_done.set()


async def test_a_loop_stops_although_its_call_swallowed_the_cancel() -> None:
    round_done = asyncio.Event()
    task = asyncio.create_task(loop_until_stopped(round_done))
    await round_done.wait()  # the loop is inside its next swallowing call

    stopped = await stop_all([task], grace_seconds=2)

    assert stopped and task.done()


async def test_stop_all_reports_a_task_that_outlives_its_grace() -> None:
    running = [True]
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        while running[0]:  # ignores stop requests on purpose
            await swallowing_call()

    task = asyncio.create_task(stubborn())
    await started.wait()
    try:
        assert await stop_all([task], grace_seconds=0.2) is False
    finally:
        running[0] = False
        await task
