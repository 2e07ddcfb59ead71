"""Real ``opshub worker`` processes: killed, stopped and cancelled in the middle of a run.

Each test runs on a database of its own, so only the worker processes it starts claim its tasks.
The API runs in this process without workers; the workers are ``python -m opshub worker``
subprocesses sharing the database, the secret store's key file and the fake model server, whose
scripted latency keeps a model call in flight while the test kills, stops or cancels.
Covered: a SIGKILLed worker's tasks are reclaimed after the lease and complete exactly once, and
the memories it still owed for a run that had ended are written once by another worker;
SIGTERM lets a run finish within the grace period, or hands it back without spending an attempt;
a cancel stops a crew before its next model call.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, create_pool, dsn, transaction
from opshub.db.migrate import migrate
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import (
    memories_written,
    store_openai_key,
    wait_for_status,
)

REPO = Path(__file__).resolve().parents[3]
# A worker imports CrewAI before its first claim: still importing after 90 s on the shared machine
# at load ~20 (a whole-suite run). Only a worker that never starts waits all of it out.
STARTUP = 300.0
T = TypeVar("T")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def lease_prefix(self) -> str:
        """How this process's leases begin (``Worker.worker_id``)."""
        return f"{socket.gethostname()}:{self.process.pid}:"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]

    async def stacks(self) -> str:
        """Abort a stuck worker: faulthandler writes every thread's stack to its log first."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGABRT)
            await until(lambda: _returncode(self.process), 10, "the aborted worker")
        return self.output()

    async def exited(self, within: float) -> int:
        return await until(lambda: _returncode(self.process), within, "the worker to exit")


async def _returncode(process: subprocess.Popen[bytes]) -> int | None:
    return process.poll()


async def until(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    """Poll ``check`` until it returns something other than None or False."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


@dataclass
class Hub:
    """An API without workers on a database of its own, and its owner pool for checks."""

    client: AsyncClient
    owner: asyncpg.Pool
    urls: DatabaseUrls
    settings: Settings

    async def tenant(self, name: str) -> TenantHandle:
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        async with transaction(self.owner) as conn:
            tenant, key = await tenants_service.create_tenant(
                conn, name=name, owner_email=email, password=password
            )
        handle = TenantHandle(tenant.id, name, email, password, key)
        await store_openai_key(self.client, handle)
        return handle

    async def submit(self, tenant: TenantHandle, text: str) -> str:
        response = await self.client.post(
            "/v1/tasks", json={"crew": "assistant", "input": text}, headers=tenant.headers
        )
        assert response.status_code == 202, response.text
        task_id: str = response.json()["id"]
        return task_id

    async def task(self, tenant: TenantHandle, task_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/tasks/{task_id}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    async def events(self, tenant: TenantHandle, task_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The finished task's SSE replay: (event type, data) in order."""
        response = await self.client.get(f"/v1/tasks/{task_id}/events", headers=tenant.headers)
        assert response.status_code == 200, response.text
        events: list[tuple[str, dict[str, Any]]] = []
        kind = None
        for line in response.text.splitlines():
            if line.startswith("event: "):
                kind = line.split(": ", 1)[1]
            elif line.startswith("data: ") and kind is not None:
                events.append((kind, json.loads(line.split(": ", 1)[1])))
                kind = None
        return events

    async def lease_owner(self, task_id: str) -> str | None:
        async with self.owner.acquire() as conn:
            owner: str | None = await conn.fetchval(
                "SELECT lease_owner FROM tasks WHERE id = $1", uuid.UUID(task_id)
            )
        return owner

    async def count(self, sql: str, task_id: str) -> int:
        async with self.owner.acquire() as conn:
            value: int = await conn.fetchval(sql, uuid.UUID(task_id))
        return value

    def spawn_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")}
        env.update(
            OPSHUB_DATABASE_URL=dsn(self.urls.owner),
            OPSHUB_DATABASE_APP_URL=dsn(self.urls.app),
            OPSHUB_DATA_DIR=str(self.settings.data_dir),
            OPSHUB_OPENAI_BASE_URL=self.settings.openai_base_url,
            OPSHUB_TASK_LEASE_SECONDS="2",
            OPSHUB_TASK_RETRY_BACKOFF_SECONDS="0.2",
            OPSHUB_CREDENTIAL_CACHE_SECONDS="0",
            OPSHUB_LLM_MAX_RETRIES="0",
            OPSHUB_CREDENTIAL_CHECK_MINUTES="0",
            OPSHUB_MEMORY_EXTRACTION="false",  # each run makes exactly its crew's model calls
            OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS="5",
            OPSHUB_LOG_LEVEL="INFO",
            OPSHUB_PROCESSES="1",  # the process spawned is the worker (leases name its pid)
        )
        env.update(overrides)
        return env


@pytest.fixture
async def hub(
    fresh_database: DatabaseUrls, runtime_settings: Settings, fake_llm: FakeLLMServer
) -> AsyncIterator[Hub]:
    fake_llm.reset()
    await migrate(fresh_database)
    settings = runtime_settings.model_copy(update={"task_lease_seconds": 2.0})
    application = create_app(settings, fresh_database)
    owner = await create_pool(fresh_database.owner, size=2)
    try:
        async with application.router.lifespan_context(application):
            transport = ASGITransport(app=application)
            async with AsyncClient(transport=transport, base_url="http://opshub") as client:
                yield Hub(client, owner, fresh_database, settings)
    finally:
        await owner.close()
        # The fake is the session's: a reply a test scripted and no worker asked for (a
        # cancelled run's next answer) would answer another module's first model call.
        fake_llm.reset()


@pytest.fixture
def spawn_worker(hub: Hub, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``opshub worker`` processes; any still alive at the end are killed."""
    started: list[WorkerProcess] = []

    def spawn(**env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-X",
                    "faulthandler",
                    "-m",
                    "opshub",
                    "worker",
                    "--concurrency",
                    "4",
                ],
                cwd=REPO,
                env=hub.spawn_env(**env),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(process, log)
        started.append(worker)
        return worker

    try:
        yield spawn
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait(timeout=30)


async def settled(
    hub: Hub, tenant: TenantHandle, task_id: str, worker: WorkerProcess, within: float
) -> dict[str, Any]:
    """The task once finished; if it is not, the worker's thread stacks explain why."""
    try:
        return await wait_for_status(hub.client, tenant, task_id, within=within)
    except AssertionError as stuck:
        raise AssertionError(f"{stuck}\n{await worker.stacks()}") from None


def calls_for(fake: FakeLLMServer, marker: str) -> list[Any]:
    """The chat completions the fake received for the task whose input holds ``marker``."""
    return [r for r in fake.requests_for("/v1/chat/completions") if marker in json.dumps(r.body)]


def types_of(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [kind for kind, _ in events]


async def test_a_killed_workers_tasks_are_reclaimed_and_complete_exactly_once(
    hub: Hub, spawn_worker: Callable[..., WorkerProcess], fake_llm: FakeLLMServer
) -> None:
    tenant = await hub.tenant("Acme Outdoor")
    markers = [f"job-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    # The first worker's three calls hang; whoever calls after them gets a quick final answer.
    fake_llm.script_openai("never delivered", latency=8.0, times=3)
    task_ids = [await hub.submit(tenant, f"Summarise report {marker}") for marker in markers]

    doomed = spawn_worker()

    async def all_in_flight() -> bool:
        return all(len(calls_for(fake_llm, marker)) == 1 for marker in markers)

    await until(all_in_flight, STARTUP, "the first worker's model calls")
    for task_id in task_ids:
        assert (await hub.lease_owner(task_id) or "").startswith(doomed.lease_prefix)
    rescuer = spawn_worker()
    doomed.process.send_signal(signal.SIGKILL)
    assert await doomed.exited(10) == -signal.SIGKILL

    for task_id in task_ids:
        task = await settled(hub, tenant, task_id, rescuer, within=STARTUP)
        assert task["status"] == "succeeded", (task, rescuer.output())
        assert task["result"] == "Final answer from the fake model."
        assert task["attempt"] == 2

        events = await hub.events(tenant, task_id)
        kinds = types_of(events)
        assert kinds.count("task.succeeded") == 1
        assert kinds[-1] == "task.succeeded"
        assert [data["attempt"] for kind, data in events if kind == "task.started"] == [1, 2]
        seqs = [data["seq"] for _, data in events]
        assert seqs == sorted(set(seqs))

        # One completion in the ledger and the outbox: the dead worker's call was never billed.
        assert (
            await hub.count(
                "SELECT count(*) FROM outbox WHERE (data->>'task_id')::uuid = $1 "
                "AND event_type = 'task.succeeded'",
                task_id,
            )
            == 1
        )
        assert (
            await hub.count("SELECT count(*) FROM usage_records WHERE task_id = $1", task_id) == 1
        )
    for marker in markers:
        assert len(calls_for(fake_llm, marker)) == 2  # one per attempt, none more
    assert rescuer.process.poll() is None


async def test_memories_a_killed_worker_owed_are_written_once_by_another(
    hub: Hub, spawn_worker: Callable[..., WorkerProcess], fake_llm: FakeLLMServer
) -> None:
    tenant = await hub.tenant("Cedar Crafts")
    marker = f"job-{uuid.uuid4().hex[:8]}"
    fact = f"Cedar Crafts sells best on Etsy ({marker})."
    fake_llm.script_openai("Etsy, by far.", usage=(40, 10))
    # The first worker's extraction call hangs; the second worker's is answered at once.
    fake_llm.script_openai("never delivered", latency=30.0)
    fake_llm.script_openai(
        json.dumps({"facts": [{"content": fact, "kind": "fact", "subject": "cedar.channel"}]}),
        usage=(100, 20),
    )
    task_id = await hub.submit(tenant, f"Where does Cedar sell best? {marker}")
    extracting = {"OPSHUB_MEMORY_EXTRACTION": "true"}
    doomed = spawn_worker(**extracting)

    # The task has ended while its memories are still owed, under the first worker's lease.
    task = await settled(hub, tenant, task_id, doomed, within=STARTUP)
    assert (task["status"], task["result"]) == ("succeeded", "Etsy, by far.")

    async def extraction_asked() -> bool:
        return len(calls_for(fake_llm, marker)) == 2

    await until(extraction_asked, 10, "the first worker's extraction call")
    assert await hub.count("SELECT memory_pending::int FROM tasks WHERE id = $1", task_id) == 1
    assert (await hub.lease_owner(task_id) or "").startswith(doomed.lease_prefix)
    rescuer = spawn_worker(**extracting)
    doomed.process.send_signal(signal.SIGKILL)
    assert await doomed.exited(10) == -signal.SIGKILL

    try:
        await memories_written(hub.owner, task_id, within=STARTUP)
    except AssertionError as stuck:
        raise AssertionError(f"{stuck}\n{await rescuer.stacks()}") from None
    async with hub.owner.acquire() as conn:
        kept = await conn.fetch(
            "SELECT kind, content FROM memories WHERE source_task_id = $1 ORDER BY kind",
            uuid.UUID(task_id),
        )
    assert [(m["kind"], m["content"]) for m in kept] == [
        ("fact", fact),
        ("outcome", f"Request: Where does Cedar sell best? {marker}\nOutcome: Etsy, by far."),
    ]
    # The run's call and the second worker's extraction are billed; the dead worker's was not.
    assert (await hub.task(tenant, task_id))["usage"]["input_tokens"] == 140
    assert await hub.count("SELECT count(*) FROM usage_records WHERE task_id = $1", task_id) == 2
    assert len(calls_for(fake_llm, marker)) == 3
    assert await hub.lease_owner(task_id) is None


async def test_sigterm_lets_a_run_finish_within_the_grace_period(
    hub: Hub, spawn_worker: Callable[..., WorkerProcess], fake_llm: FakeLLMServer
) -> None:
    tenant = await hub.tenant("Blue Bakery")
    marker = f"job-{uuid.uuid4().hex[:8]}"
    fake_llm.script_openai("Done before the worker stopped.", latency=2.0)
    task_id = await hub.submit(tenant, f"Summarise report {marker}")
    worker = spawn_worker(OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS="20")

    async def in_flight() -> bool:
        return len(calls_for(fake_llm, marker)) == 1

    await until(in_flight, STARTUP, "the model call")
    worker.process.send_signal(signal.SIGTERM)
    task = await settled(hub, tenant, task_id, worker, within=15)  # the grace is 20 s
    assert await worker.exited(30) == 0, worker.output()
    assert task["status"] == "succeeded", (task, worker.output())
    assert task["result"] == "Done before the worker stopped."
    assert task["attempt"] == 1
    kinds = types_of(await hub.events(tenant, task_id))
    assert kinds.count("task.started") == 1
    assert kinds[-1] == "task.succeeded"


async def test_sigterm_hands_back_a_run_longer_than_the_grace_period(
    hub: Hub, spawn_worker: Callable[..., WorkerProcess], fake_llm: FakeLLMServer
) -> None:
    tenant = await hub.tenant("Cedar Clinic")
    marker = f"job-{uuid.uuid4().hex[:8]}"
    fake_llm.script_openai("too late", latency=10.0)
    task_id = await hub.submit(tenant, f"Summarise report {marker}")
    leaving = spawn_worker(OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS="0.5")

    async def in_flight() -> bool:
        return len(calls_for(fake_llm, marker)) == 1

    await until(in_flight, STARTUP, "the model call")
    leaving.process.send_signal(signal.SIGTERM)

    async def handed_back() -> dict[str, Any] | None:
        task = await hub.task(tenant, task_id)
        return task if task["status"] != "running" else None

    task = await until(handed_back, 30, "the task to leave the stopping worker")
    assert task["status"] == "queued"
    assert task["attempt"] == 0  # the interrupted run was not an attempt

    staying = spawn_worker()
    assert await leaving.exited(30) == 0, leaving.output()
    task = await settled(hub, tenant, task_id, staying, within=STARTUP)
    assert task["status"] == "succeeded", (task, staying.output())
    assert task["result"] == "Final answer from the fake model."
    assert task["attempt"] == 1
    events = await hub.events(tenant, task_id)
    assert [data["attempt"] for kind, data in events if kind == "task.started"] == [1, 1]
    assert types_of(events).count("task.succeeded") == 1
    assert len(calls_for(fake_llm, marker)) == 2


async def test_cancelling_a_running_task_stops_it_before_its_next_model_call(
    hub: Hub, spawn_worker: Callable[..., WorkerProcess], fake_llm: FakeLLMServer
) -> None:
    tenant = await hub.tenant("Delta Dental")
    marker = f"job-{uuid.uuid4().hex[:8]}"
    # Without the cancel, the tool's result would go back to the model in a second call.
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})], latency=3.0)
    fake_llm.script_openai("should never be asked for")
    task_id = await hub.submit(tenant, f"How many clients do we have? {marker}")
    worker = spawn_worker()

    async def in_flight() -> bool:
        return len(calls_for(fake_llm, marker)) == 1

    await until(in_flight, STARTUP, "the first model call")
    assert (await hub.task(tenant, task_id))["status"] == "running"
    response = await hub.client.post(f"/v1/tasks/{task_id}/cancel", headers=tenant.headers)
    assert response.status_code == 202, response.text
    cancelled_at = time.monotonic()

    task = await settled(hub, tenant, task_id, worker, within=30)
    assert task["status"] == "cancelled", (task, worker.output())
    assert task.get("result") is None
    calls = calls_for(fake_llm, marker)
    assert len(calls) == 1 and calls[0].at < cancelled_at
    assert fake_llm.pending("openai") == 1  # the second answer was never asked for
    kinds = types_of(await hub.events(tenant, task_id))
    assert kinds.count("task.cancelled") == 1
    assert kinds[-1] == "task.cancelled"
    assert "task.succeeded" not in kinds
