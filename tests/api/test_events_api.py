"""GET /v1/events (API.md v1.1, "Tenant-wide live events"): the tenant's domain events as SSE.

No worker runs here: submitting and cancelling through the API make the transitions. The stream
is read as it is written (``StreamingASGITransport``), on the embedded default without Redis.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from opshub.db.engine import tenant_transaction
from tests.conftest import TenantHandle
from tests.integration.runtime.test_sse import Frame, StreamingASGITransport, frames


@pytest.fixture
async def sse_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        transport=StreamingASGITransport(app), base_url="http://opshub", timeout=30
    ) as client:
        yield client


async def submit(client: AsyncClient, tenant: TenantHandle, text: str) -> str:
    response = await client.post(
        "/v1/tasks", json={"crew": "assistant", "input": text}, headers=tenant.headers
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def next_frames(stream: AsyncIterator[Frame], count: int) -> list[Frame]:
    async with asyncio.timeout(10):
        return [await anext(stream) for _ in range(count)]


async def open_stream(
    client: AsyncClient, tenant: TenantHandle, **headers: str
) -> tuple[httpx.Response, AsyncIterator[Frame]]:
    request = client.build_request("GET", "/v1/events", headers={**tenant.headers, **headers})
    response = await client.send(request, stream=True)
    assert response.status_code == 200, await response.aread()
    assert response.headers["content-type"].startswith("text/event-stream")
    return response, frames(response)


async def test_a_submitted_and_cancelled_task_arrive_live_with_a_tenant_wide_cursor(
    sse_client: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response, stream = await open_stream(sse_client, tenant_a)
    try:
        task_id = await submit(client, tenant_a, "Summarise last week")
        cancelled = await client.post(f"/v1/tasks/{task_id}/cancel", headers=tenant_a.headers)
        assert cancelled.status_code == 202
        queued, ended = await next_frames(stream, 2)
    finally:
        await response.aclose()
    assert (queued["event"], queued["data"]["task_id"]) == ("task.queued", task_id)
    assert (ended["event"], ended["data"]["task_id"]) == ("task.cancelled", task_id)
    assert queued["data"]["type"] == "task.queued" and queued["data"]["ts"]
    assert int(ended["id"]) > int(queued["id"])


async def test_last_event_id_resumes_after_the_cursor_without_gap_or_duplicate(
    sse_client: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response, stream = await open_stream(sse_client, tenant_a)
    try:
        first = await submit(client, tenant_a, "first")
        (seen,) = await next_frames(stream, 1)
    finally:
        await response.aclose()
    # While no one watches, two more tasks come.
    missed = [await submit(client, tenant_a, "second"), await submit(client, tenant_a, "third")]
    response, stream = await open_stream(sse_client, tenant_a, **{"Last-Event-ID": seen["id"]})
    try:
        resumed = await next_frames(stream, 2)
    finally:
        await response.aclose()
    assert seen["data"]["task_id"] == first
    assert [frame["data"]["task_id"] for frame in resumed] == missed


async def test_a_stream_carries_only_the_callers_tenant(
    sse_client: AsyncClient, client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    response, stream = await open_stream(sse_client, tenant_a)
    try:
        await submit(client, tenant_b, "the other tenant's work")
        mine = await submit(client, tenant_a, "my work")
        (first,) = await next_frames(stream, 1)
    finally:
        await response.aclose()
    assert first["data"]["task_id"] == mine


async def test_the_stream_needs_credentials(client: AsyncClient) -> None:
    response = await client.get("/v1/events")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"


async def test_a_page_rendered_at_a_cursor_gets_what_happened_before_it_connected(
    sse_client: AsyncClient, client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response, stream = await open_stream(sse_client, tenant_a)
    try:
        await submit(client, tenant_a, "before the page")
        (rendered_at,) = await next_frames(stream, 1)
    finally:
        await response.aclose()
    between = await submit(client, tenant_a, "after rendering, before connecting")
    request = sse_client.build_request(
        "GET", "/v1/events", params={"after": rendered_at["id"]}, headers=tenant_a.headers
    )
    response = await sse_client.send(request, stream=True)
    try:
        (first,) = await next_frames(frames(response), 1)
    finally:
        await response.aclose()
    assert first["data"]["task_id"] == between


async def test_an_event_held_behind_an_older_transaction_follows_its_end_closely(
    sse_client: AsyncClient, client: AsyncClient, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    """A stream shows a row once no older writing transaction is open. Woken by the row's
    commit while another run's ending is still open, it looks again within tens of ms of that
    one's end (each look a query: 25 ms after the wake-up, then twice as long each time)."""
    response, stream = await open_stream(sse_client, tenant_a)
    lags = []
    try:
        for n in range(3):
            async with owner_pool.acquire() as older:
                older_tx = older.transaction()
                await older_tx.start()
                await older.fetchval("SELECT pg_current_xact_id()")  # it has written
                await submit(client, tenant_a, f"Held back {n}")  # commits, wakes the stream
                await asyncio.sleep(0.04)
                await older_tx.commit()
                ended = time.perf_counter()
            [queued] = await next_frames(stream, 1)
            lags.append(time.perf_counter() - ended)
            assert queued["data"]["type"] == "task.queued"
    finally:
        await response.aclose()
    assert statistics.median(lags) < 0.12, lags


async def emit(conn: asyncpg.Connection, tenant: TenantHandle, event_type: str) -> None:
    await conn.execute(
        "INSERT INTO outbox (tenant_id, event_type, data) VALUES ($1, $2, '{}')",
        tenant.id,
        event_type,
    )


async def test_an_event_still_held_when_an_earlier_one_is_sent_follows_once_free(
    sse_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
) -> None:
    """The wake-up of an event held back is spent by the read that sends an earlier one: the
    stream must not then sleep until the next event or keep-alive (15 s)."""
    response, stream = await open_stream(sse_client, tenant_a)
    try:
        async with owner_pool.acquire() as first, owner_pool.acquire() as oldest:
            first_tx, oldest_tx = first.transaction(), oldest.transaction()
            await first_tx.start()
            await first.fetchval("SELECT pg_current_xact_id()")
            await oldest_tx.start()
            await oldest.fetchval("SELECT pg_current_xact_id()")  # writes nothing it tells
            async with tenant_transaction(app_pool, tenant_a.id) as conn:
                await emit(conn, tenant_a, "test.held_until_the_oldest_ends")
            await emit(first, tenant_a, "test.sent_first")
            await first_tx.commit()
            [sent] = await next_frames(stream, 1)
            assert sent["event"] == "test.sent_first"
            await asyncio.sleep(0.3)
            await oldest_tx.commit()
            ended = time.perf_counter()
        async with asyncio.timeout(2):
            [held] = await next_frames(stream, 1)
        assert held["event"] == "test.held_until_the_oldest_ends"
        assert time.perf_counter() - ended < 1.0
    finally:
        await response.aclose()
