"""Background loops stop on request even when a call inside them swallows the cancellation."""

from __future__ import annotations

import asyncio
import contextlib

from opshub.loops import stop_all, stop_requested


async def swallowing_call() -> None:
    """Like a client library that catches CancelledError mid-call and carries on."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0.05)


async def loop_until_stopped(rounds: list[int]) -> None:
    while not stop_requested():
        await swallowing_call()
        rounds.append(1)


async def test_a_loop_stops_although_its_call_swallowed_the_cancel() -> None:
    rounds: list[int] = []
    task = asyncio.create_task(loop_until_stopped(rounds))
    await asyncio.sleep(0.12)

    stopped = await stop_all([task], grace_seconds=2)

    assert stopped and task.done()
    assert len(rounds) >= 1


async def test_stop_all_reports_a_task_that_outlives_its_grace() -> None:
    running = [True]

    async def stubborn() -> None:
        while running[0]:  # ignores stop requests on purpose
            await swallowing_call()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    try:
        assert await stop_all([task], grace_seconds=0.2) is False
    finally:
        running[0] = False
        await task
