"""How a run ends (``opshub.runtime.run_outcome``): the outcome is written only by the worker that
still holds the task's lease. A worker whose lease ran out and was taken over (it was presumed
dead, but was only slow) must not complete the task a second time or over the new holder's run.

The task is put in the running state by hand, under a lease far in the future: no worker of the
test session claims or requeues it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from opshub.config import Settings
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import open_secret_store
from opshub.llm.factory import LLMFactory
from opshub.loops import stop_all
from opshub.runtime.live import LocalLiveEvents
from opshub.runtime.run_outcome import RunOutcomes
from opshub.runtime.task_events import TaskEventWriter
from opshub.tasks.models import TaskStatus
from tests.conftest import TenantHandle

HOLDER = "worker-now-holding-the-lease"


@pytest.fixture
async def writer(owner_pool: asyncpg.Pool) -> AsyncIterator[TaskEventWriter]:
    events = TaskEventWriter(pool=owner_pool, live=LocalLiveEvents())
    task = asyncio.create_task(events.run())
    try:
        yield events
    finally:
        await stop_all([task])


def outcomes(app_pool: asyncpg.Pool, settings: Settings, worker_id: str) -> RunOutcomes:
    resolver = CredentialResolver(
        pool=app_pool, store=open_secret_store(settings), settings=settings
    )
    return RunOutcomes(
        app_pool=app_pool,
        live=LocalLiveEvents(),
        factory=LLMFactory(pool=app_pool, resolver=resolver, settings=settings),
        settings=settings,
        worker_id=worker_id,
    )


async def running_task(owner_pool: asyncpg.Pool, tenant: TenantHandle) -> asyncpg.Record:
    row = await owner_pool.fetchrow(
        "INSERT INTO tasks (tenant_id, input, status, attempt, started_at, lease_owner,"
        " lease_expires_at) VALUES ($1, 'Summarise last week', 'running', 2, now(), $2,"
        " now() + interval '1 hour') RETURNING *",
        tenant.id,
        HOLDER,
    )
    assert row is not None
    return row


async def stored(owner_pool: asyncpg.Pool, task_id: uuid.UUID) -> tuple[asyncpg.Record, int, int]:
    """The task row, its stored events and its outbox events."""
    task = await owner_pool.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)
    events = await owner_pool.fetchval(
        "SELECT count(*) FROM task_events WHERE task_id = $1", task_id
    )
    outbox = await owner_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE (data->>'task_id')::uuid = $1", task_id
    )
    assert task is not None
    return task, events, outbox


async def test_a_worker_that_lost_the_lease_cannot_complete_the_task(
    tenant_a: TenantHandle,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    settings: Settings,
    writer: TaskEventWriter,
) -> None:
    row = await running_task(owner_pool, tenant_a)
    stale = outcomes(app_pool, settings, "worker-presumed-dead")
    events = writer.open_run(tenant_id=tenant_a.id, task_id=row["id"], last_seq=0)

    ended = await stale.complete(row, events, TaskStatus.succeeded, None, result="stale answer")

    assert ended is False
    task, event_count, outbox_count = await stored(owner_pool, row["id"])
    assert task["status"] == "running"
    assert task["result"] is None and task["finished_at"] is None
    assert task["lease_owner"] == HOLDER
    assert (event_count, outbox_count) == (0, 0)  # no task.succeeded anywhere


async def test_the_lease_holder_completes_the_task(
    tenant_a: TenantHandle,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    settings: Settings,
    writer: TaskEventWriter,
) -> None:
    """The control for the test above: the same call by the holder ends the task."""
    row = await running_task(owner_pool, tenant_a)
    holder = outcomes(app_pool, settings, HOLDER)
    events = writer.open_run(tenant_id=tenant_a.id, task_id=row["id"], last_seq=0)

    await holder.complete(row, events, TaskStatus.succeeded, None, result="the answer")

    task, event_count, outbox_count = await stored(owner_pool, row["id"])
    assert task["status"] == "succeeded" and task["result"] == "the answer"
    assert task["lease_owner"] is None
    assert (event_count, outbox_count) == (1, 1)  # task.succeeded, stored and in the outbox
