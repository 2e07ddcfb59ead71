"""Task events as Server-Sent Events (API.md "Tasks": ``GET /v1/tasks/{id}/events``), and the
Redis pub/sub that carries live events between processes.

A slow run is watched live, the connection dropped mid-run and resumed with ``Last-Event-ID``:
together the two streams hold every event once, in order. A finished task replays and closes.
``RedisLiveEvents`` is tested on the real Redis: publish on one instance, watchers on another
receive; the last watcher leaving unsubscribes; many watchers share one pub/sub connection.

httpx's ``ASGITransport`` hands a response over only once the app has finished it, which an open
event stream never does; ``StreamingASGITransport`` below passes chunks as they are sent and tells
the app the client went away when the response is closed, like a real connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, tenant_transaction
from opshub.runtime.live import RedisLiveEvents, channel
from opshub.tasks import service as tasks_service
from tests.conftest import REDIS_URL, TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status

Frame = dict[str, Any]


class _ChunkStream(httpx.AsyncByteStream):
    def __init__(
        self,
        chunks: asyncio.Queue[bytes | None],
        disconnected: asyncio.Event,
        app_task: asyncio.Task[None],
    ) -> None:
        self._chunks, self._disconnected, self._app_task = chunks, disconnected, app_task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._disconnected.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._app_task), 5)
        except TimeoutError:
            self._app_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._app_task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        disconnected = asyncio.Event()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        started: asyncio.Future[tuple[int, list[Any]]] = asyncio.get_running_loop().create_future()
        request_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], message.get("headers", [])))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)  # type: ignore[arg-type]
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
                raise
            finally:
                if not started.done():
                    started.set_exception(RuntimeError("the app sent no response"))
                chunks.put_nowait(None)

        app_task = asyncio.create_task(run())
        status, headers = await started
        return httpx.Response(
            status, headers=headers, stream=_ChunkStream(chunks, disconnected, app_task)
        )


@pytest.fixture
async def sse_client(hub: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        transport=StreamingASGITransport(hub), base_url="http://opshub", timeout=30
    ) as client:
        yield client


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Each event of an SSE response: its ``id``, ``event`` and parsed ``data`` lines."""
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if current:
                yield {
                    "id": current.get("id"),
                    "event": current.get("event"),
                    "data": json.loads(current["data"]),
                }
            current = {}
        elif not line.startswith(":"):  # comments are keep-alives
            name, _, value = line.partition(": ")
            current[name] = value


async def read_all(client: AsyncClient, url: str, headers: dict[str, str]) -> list[Frame]:
    """The whole stream, which must end by itself."""
    async with asyncio.timeout(20), client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        return [frame async for frame in frames(response)]


def check_frames(received: list[Frame]) -> None:
    for frame in received:
        data = frame["data"]
        assert frame["id"] == str(data["seq"]), frame
        assert frame["event"] == data["type"], frame
        assert data["ts"], frame


async def slow_task(
    client: AsyncClient, tenant: TenantHandle, fake_llm: FakeLLMServer
) -> dict[str, Any]:
    await store_openai_key(client, tenant)
    fake_llm.script_openai(
        tool_calls=[("tenant_data", {"resource": "clients"})], usage=(50, 10), latency=1.5
    )
    fake_llm.script_openai("Acme has no clients yet.", usage=(80, 12), latency=1.5)
    response = await client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "How many clients do we have?"},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


async def test_a_dropped_stream_resumes_from_last_event_id_without_gap_or_duplicate(
    sse_client: AsyncClient,
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    task = await slow_task(hub_client, tenant_a, fake_llm)
    url = f"/v1/tasks/{task['id']}/events"

    first: list[Frame] = []
    async with asyncio.timeout(20), sse_client.stream("GET", url, headers=tenant_a.headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for frame in frames(r):
            first.append(frame)
            if len(first) == 2:
                break  # the client goes away mid-run
    during = await hub_client.get(f"/v1/tasks/{task['id']}", headers=tenant_a.headers)
    assert during.json()["status"] == "running", "the drop was meant to happen mid-run"

    last_seen = first[-1]["id"]
    rest = await read_all(sse_client, url, {**tenant_a.headers, "Last-Event-ID": last_seen})

    union = first + rest
    check_frames(union)
    seqs = [frame["data"]["seq"] for frame in union]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    types = [frame["event"] for frame in union]
    assert types[0] == "task.started"
    assert types[-1] == "task.succeeded"
    assert types.count("task.succeeded") == 1
    assert {"llm.call", "tool.call", "tool.result"} <= set(types)
    assert union[-1]["data"]["text"] == "Acme has no clients yet."
    assert all(frame["data"]["seq"] > int(last_seen) for frame in rest)

    finished = await wait_for_status(hub_client, tenant_a, task["id"])
    assert finished["status"] == "succeeded"
    # A finished task replays everything from the start and closes.
    replay = await read_all(sse_client, url, tenant_a.headers)
    assert [frame["data"] for frame in replay] == [frame["data"] for frame in union]


async def test_several_clients_watching_one_run_each_get_every_event(
    sse_client: AsyncClient,
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    task = await slow_task(hub_client, tenant_a, fake_llm)
    url = f"/v1/tasks/{task['id']}/events"

    streams = await asyncio.gather(*(read_all(sse_client, url, tenant_a.headers) for _ in range(3)))

    expected = [frame["data"] for frame in streams[0]]
    assert [frame["data"]["seq"] for frame in streams[0]] == list(range(1, len(expected) + 1))
    assert expected[-1]["type"] == "task.succeeded"
    for stream in streams[1:]:
        assert [frame["data"] for frame in stream] == expected


@pytest.fixture
async def finished_task(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> dict[str, Any]:
    await store_openai_key(hub_client, tenant_a)
    fake_llm.script_openai("All quiet.", usage=(10, 3))
    response = await hub_client.post(
        "/v1/tasks", json={"crew": "assistant", "input": "Anything new?"}, headers=tenant_a.headers
    )
    task = await wait_for_status(hub_client, tenant_a, response.json()["id"])
    assert task["status"] == "succeeded", task
    return task


@pytest.mark.parametrize("garbage", ["banana", "-7", "1.5", ""])
async def test_an_unusable_last_event_id_replays_from_the_start(
    sse_client: AsyncClient, tenant_a: TenantHandle, finished_task: dict[str, Any], garbage: str
) -> None:
    url = f"/v1/tasks/{finished_task['id']}/events"
    received = await read_all(sse_client, url, {**tenant_a.headers, "Last-Event-ID": garbage})

    check_frames(received)
    assert received[0]["data"]["seq"] == 1
    assert received[0]["event"] == "task.started"
    assert received[-1]["event"] == "task.succeeded"


async def test_resuming_a_finished_task_in_the_middle_replays_the_rest_and_closes(
    sse_client: AsyncClient, tenant_a: TenantHandle, finished_task: dict[str, Any]
) -> None:
    url = f"/v1/tasks/{finished_task['id']}/events"
    everything = await read_all(sse_client, url, tenant_a.headers)
    cut = len(everything) // 2

    rest = await read_all(
        sse_client, url, {**tenant_a.headers, "Last-Event-ID": everything[cut - 1]["id"]}
    )

    assert [frame["data"] for frame in rest] == [frame["data"] for frame in everything[cut:]]


async def test_reconnecting_after_the_final_event_ends_at_once_with_nothing(
    sse_client: AsyncClient, tenant_a: TenantHandle, finished_task: dict[str, Any]
) -> None:
    """A browser's EventSource reconnects whenever a stream ends, with the last id it saw; it
    must not be held open (204 tells it to stop reconnecting). An id past the end is the same."""
    url = f"/v1/tasks/{finished_task['id']}/events"
    everything = await read_all(sse_client, url, tenant_a.headers)

    for last_id in (everything[-1]["id"], "999999"):
        async with (
            asyncio.timeout(5),
            sse_client.stream(
                "GET", url, headers={**tenant_a.headers, "Last-Event-ID": last_id}
            ) as response,
        ):
            body = await response.aread()
        assert response.status_code == 204, body
        assert b"event:" not in body


async def test_another_tenants_task_events_are_not_found(
    sse_client: AsyncClient, tenant_b: TenantHandle, finished_task: dict[str, Any]
) -> None:
    async with sse_client.stream(
        "GET", f"/v1/tasks/{finished_task['id']}/events", headers=tenant_b.headers
    ) as response:
        assert response.status_code == 404
        body = json.loads(await response.aread())
    assert body["error"]["code"] == "not_found"


async def test_a_live_batch_that_skips_an_event_is_filled_in_from_the_database(
    app: FastAPI, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    """A watcher's live message can be lost (a Redis hiccup) while the event is stored: the next
    live batch then starts past the watcher's last event, and the stream reads the gap back."""
    # Running under a lease no worker of this session holds: nobody else writes its events.
    task_id = await owner_pool.fetchval(
        "INSERT INTO tasks (tenant_id, input, status, attempt, started_at, lease_owner,"
        " lease_expires_at) VALUES ($1, 'gap', 'running', 1, now(), 'elsewhere',"
        " now() + interval '1 hour') RETURNING id",
        tenant_a.id,
    )
    live = app.state.opshub.live

    async def store(seq: int, type_: str) -> dict[str, Any]:
        ts = await owner_pool.fetchval(
            "INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data)"
            " VALUES ($1, $2, $3, $4, now(), '{}') RETURNING ts",
            tenant_a.id,
            task_id,
            seq,
            type_,
        )
        return {"seq": seq, "type": type_, "ts": ts.isoformat()}

    async with (
        AsyncClient(transport=StreamingASGITransport(app), base_url="http://opshub") as client,
        asyncio.timeout(20),
        client.stream("GET", f"/v1/tasks/{task_id}/events", headers=tenant_a.headers) as response,
    ):
        assert response.status_code == 200
        received = frames(response)
        # Nothing is stored yet, so once the stream shows this live-only event, it has done its
        # replay and is waiting on live messages alone.
        await live.publish({task_id: [{"seq": 1, "type": "agent.step", "ts": "t"}]})
        first = await anext(received)
        await store(2, "tool.call")  # stored, but its live message never comes
        final = await store(3, "task.succeeded")
        await live.publish({task_id: [final]})
        rest = [frame async for frame in received]

    assert [frame["data"]["seq"] for frame in [first, *rest]] == [1, 2, 3]
    assert [frame["event"] for frame in rest] == ["tool.call", "task.succeeded"]


# --- Redis live events -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def live_on_redis(name: str) -> AsyncIterator[tuple[RedisLiveEvents, Redis]]:
    redis = Redis.from_url(REDIS_URL, client_name=name)
    live = RedisLiveEvents(redis)
    try:
        yield live, redis
    finally:
        await live.close()
        await redis.aclose()


async def numsub(redis: Redis, *channels: str) -> dict[str, int]:
    answer = await redis.pubsub_numsub(*channels)
    return {(c.decode() if isinstance(c, bytes) else c): int(n) for c, n in answer}


async def eventually(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_redis_live_events_reach_watchers_on_another_instance() -> None:
    tag = uuid.uuid4().hex[:8]
    task_id, other_task = uuid.uuid4(), uuid.uuid4()
    batch = [{"seq": 1, "type": "task.started", "ts": "2026-01-01T00:00:00+00:00"}]
    async with (
        live_on_redis(f"pub-{tag}") as (publisher, _),
        live_on_redis(f"sub-{tag}") as (subscriber, redis),
    ):
        async with (
            subscriber.watch(task_id) as first,
            subscriber.watch(task_id) as second,
            subscriber.watch(other_task) as bystander,
        ):
            assert (await numsub(redis, channel(task_id)))[channel(task_id)] == 1
            await publisher.publish({task_id: batch})
            async with asyncio.timeout(5):
                assert await first.get() == batch
                assert await second.get() == batch
            assert bystander.empty()

            # One watcher leaving keeps the channel for the other.
            async with subscriber.watch(task_id) as third:
                pass
            assert third.empty()
            await publisher.publish({task_id: [{**batch[0], "seq": 2}]})
            async with asyncio.timeout(5):
                assert (await first.get())[0]["seq"] == 2

        # The last watcher gone, the instance leaves the channel: nothing is delivered.
        async def unsubscribed() -> bool:
            counts = await numsub(redis, channel(task_id), channel(other_task))
            return counts == {channel(task_id): 0, channel(other_task): 0}

        await eventually(unsubscribed)
        assert await redis.publish(channel(task_id), json.dumps(batch)) == 0


async def test_a_group_commit_publishes_each_task_its_own_batch() -> None:
    tag = uuid.uuid4().hex[:8]
    tasks = [uuid.uuid4() for _ in range(3)]
    batches = {
        task_id: [{"seq": n, "type": "agent.step", "ts": "2026-01-01T00:00:00+00:00"}]
        for n, task_id in enumerate(tasks, start=1)
    }
    async with (
        live_on_redis(f"pub-{tag}") as (publisher, _),
        live_on_redis(f"sub-{tag}") as (subscriber, _),
        subscriber.watch(tasks[0]) as first,
        subscriber.watch(tasks[2]) as third,
    ):
        await publisher.publish(batches)
        async with asyncio.timeout(5):
            assert await first.get() == batches[tasks[0]]
            assert await third.get() == batches[tasks[2]]
        assert first.empty()
        assert third.empty()


async def test_two_hundred_watchers_share_one_pubsub_connection() -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"sub-{tag}"
    task_ids = [uuid.uuid4() for _ in range(100)]
    async with (
        live_on_redis(f"pub-{tag}") as (publisher, _),
        live_on_redis(name) as (subscriber, redis),
        contextlib.AsyncExitStack() as stack,
    ):
        queues: dict[uuid.UUID, list[asyncio.Queue[Any]]] = {}
        for task_id in task_ids:  # two watchers per task, 200 in all
            queues[task_id] = [
                await stack.enter_async_context(subscriber.watch(task_id)) for _ in range(2)
            ]

        clients = [client for client in await redis.client_list() if client.get("name") == name]
        subscribed = [client for client in clients if int(client.get("sub", 0)) > 0]
        assert len(subscribed) == 1, clients
        assert int(subscribed[0]["sub"]) == len(task_ids)
        assert len(clients) <= 2, clients  # the pub/sub connection, and one for commands

        for n, task_id in enumerate(task_ids):
            await publisher.publish({task_id: [{"seq": n, "type": "token", "ts": "t"}]})
        async with asyncio.timeout(10):
            for n, task_id in enumerate(task_ids):
                for queue in queues[task_id]:
                    assert (await queue.get())[0]["seq"] == n


async def test_with_redis_away_a_watcher_reads_new_events_from_the_database_at_once(
    settings: Settings, urls: DatabaseUrls, tenant_a: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    away = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    app = create_app(away, urls)
    transport = StreamingASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://opshub") as client,
    ):
        submitted = await client.post(
            "/v1/tasks", json={"crew": "assistant", "input": "hello"}, headers=tenant_a.headers
        )
        task_id = uuid.UUID(submitted.json()["id"])
        async with client.stream(
            "GET", f"/v1/tasks/{task_id}/events", headers=tenant_a.headers
        ) as stream:
            lines = stream.aiter_lines()
            async with asyncio.timeout(30):
                while (await anext(lines)) != ": watching":  # the stream's first write
                    pass
            # A worker elsewhere stores the run's end; its publish to Redis is lost.
            async with tenant_transaction(app_pool, tenant_a.id) as conn:
                await tasks_service.append_event(
                    conn, tenant_id=tenant_a.id, task_id=task_id, type="task.succeeded", data={}
                )
            stored_at = time.monotonic()
            async with asyncio.timeout(30):
                while (await anext(lines)) != "event: task.succeeded":
                    pass
            # Not after the 15 s keep-alive: the stream polls while Redis is away.
            assert time.monotonic() - stored_at < 5
