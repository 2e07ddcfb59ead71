"""Following a task for an MCP client: each step as a progress notification, until it stops.

The stored events are the truth and live events only wake the follower, so a step published
before the follower started watching, or while it was busy reporting, is still reported once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

from opshub.db.engine import tenant_transaction
from opshub.mcp.access import Caller
from opshub.tasks import service as tasks_service
from opshub.tasks.models import TERMINAL_EVENTS, EventType
from opshub.tasks.schemas import TaskEvent

# Where a run stops for the caller: its end, or a change waiting for a person's decision.
STOPS = TERMINAL_EVENTS | {EventType.task_awaiting_approval}
# Streamed text arrives token by token: steps are what a progress bar shows.
UNREPORTED = frozenset({EventType.token})
# A missed wake-up (another process published while this one was not yet listening) costs this.
RECHECK_SECONDS = 2.0

Report = Callable[[TaskEvent], Awaitable[None]]


def describe(event: TaskEvent) -> str:
    """A progress message: the step's type and who or what it concerns."""
    subject = event.tool or event.agent
    return f"{event.type}: {subject}" if subject else event.type


async def follow(caller: Caller, task_id: uuid.UUID, *, report: Report, within: float) -> bool:
    """Report the task's steps as they happen; True once it stopped, False after ``within`` s."""
    state, tenant_id = caller.state, caller.principal.tenant_id
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = 0
    async with state.live.watch(task_id) as live:
        while True:
            async with tenant_transaction(state.app_pool, tenant_id) as conn:
                events = await tasks_service.events_after(
                    conn, tenant_id=tenant_id, task_id=task_id, after=last
                )
            for event in events:
                last = event.seq
                if event.type not in UNREPORTED:
                    await report(event)
                if event.type in STOPS:
                    return True
            if events:
                continue  # there may be more pages
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.get(), min(remaining, RECHECK_SECONDS))
            while not live.empty():
                live.get_nowait()
