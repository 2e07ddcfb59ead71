"""``opshub.client`` against the real API: typed answers, the error envelope as exceptions,
pagination across cursors and a task's events as a stream that ends with the task."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport

from opshub.client import AsyncClient, calls
from opshub.client.errors import ConflictError, InvalidRequestError, NotFoundError
from opshub.tasks.models import TaskStatus
from tests.conftest import TenantHandle


@pytest.fixture
async def hub(app: FastAPI, tenant_a: TenantHandle) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app)
    async with AsyncClient("http://opshub", tenant_a.api_key, transport=transport) as client:
        yield client


async def test_a_task_comes_back_typed_and_a_missing_one_raises_not_found(hub: AsyncClient) -> None:
    task = await hub.send(calls.submit_task(input="Count the leads.", crew="assistant"))
    assert task.status is TaskStatus.queued
    assert (await hub.send(calls.get_task(task.id))).input == "Count the leads."

    with pytest.raises(NotFoundError) as missing:
        await hub.send(calls.get_task(uuid.uuid4()))
    assert (missing.value.status, missing.value.code) == (404, "not_found")


async def test_a_bad_request_raises_with_the_fields_it_names(hub: AsyncClient) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        await hub.send(calls.submit_task(input="x", priority=42))
    assert refused.value.code == "invalid_request"
    assert refused.value.details is not None
    assert [f["loc"] for f in refused.value.details["fields"]] == ["body.priority"]


async def test_pages_follows_the_cursor_to_the_last_item(hub: AsyncClient) -> None:
    crew = "analytics"
    submitted = {
        (await hub.send(calls.submit_task(input=f"Report {n}", crew=crew, priority=0))).id
        for n in range(5)
    }

    seen = [
        task.id
        async for task in hub.pages(
            lambda cursor: calls.list_tasks(crew=crew, status="queued", limit=2, cursor=cursor)
        )
    ]

    assert submitted <= set(seen)
    assert len(seen) == len(set(seen))


async def test_events_replay_a_cancelled_task_and_end_with_it(hub: AsyncClient) -> None:
    task = await hub.send(calls.submit_task(input="Never mind.", crew="assistant"))
    cancelled = await hub.send(calls.cancel_task(task.id))
    assert cancelled.status is TaskStatus.cancelled

    events = [event.type async for event in hub.events(task.id)]

    assert events[-1] == "task.cancelled"
    with pytest.raises(ConflictError) as finished:
        await hub.send(calls.cancel_task(task.id))
    assert finished.value.code == "task_finished"
