"""``opshub serve --processes 2 --api-processes 2`` on the embedded default, without Redis: two
API processes behind one port and two worker processes beside them share live events, cancels,
login limits and credential changes through PostgreSQL; a child killed outright is started again;
the hub stopped stops its PostgreSQL.

Which API process answers a connection is the kernel's choice, so the test makes it: it stops
the other API process (SIGSTOP) while it connects, and a new connection goes to the one left
running. Which process is which, the supervisor's log says (``process started``, role and pid).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from opshub.db.engine import create_pool, transaction
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.fakes.server import free_port
from tests.integration.runtime.conftest import store_openai_key
from tests.integration.runtime.test_worker_processes import calls_for, until

REPO = Path(__file__).resolve().parents[3]
STARTUP = 120.0  # migrations, then two processes importing CrewAI, on a shared machine
LOGIN_LIMIT = 3
SSE_KEEPALIVE = 15.0  # without live delivery a watcher sees new events only this late


@dataclass
class Hub:
    supervisor: subprocess.Popen[bytes]
    data_dir: Path
    base_url: str
    log: Path
    owner: asyncpg.Pool | None = None

    def output(self, *, whole: bool = False) -> str:
        text = self.log.read_text(errors="replace")
        return text if whole else text[-6000:]

    def children(self) -> list[psutil.Process]:
        """The serving processes (not multiprocessing's resource tracker)."""
        return [p for p in psutil.Process(self.supervisor.pid).children() if _serving(p)]

    def pids(self, role: str) -> list[int]:
        """The living children of ``role`` (``api``, ``worker``), as the supervisor logged them."""
        logged = {
            line["pid"]: line["role"]
            for line in _json_lines(self.output(whole=True))
            if line.get("event") == "process started"
        }
        return [p.pid for p in self.children() if logged.get(p.pid) == role]

    def workers_started(self) -> int:
        return sum(
            line.get("event") == "worker started" for line in _json_lines(self.output(whole=True))
        )

    @contextlib.contextmanager
    def only(self, pid: int) -> Iterator[None]:
        """The other API processes stopped: new connections go to ``pid``."""
        others = [psutil.Process(other) for other in self.pids("api") if other != pid]
        for other in others:
            other.suspend()
        try:
            yield
        finally:
            for other in others:
                other.resume()

    def client(self) -> httpx.AsyncClient:
        # No kept-alive connections: each request is a new connection, to whichever process runs.
        return httpx.AsyncClient(
            base_url=self.base_url, limits=httpx.Limits(max_keepalive_connections=0), timeout=30
        )

    async def ready(self, pid: int) -> None:
        async def answers() -> bool:
            assert self.supervisor.poll() is None, self.output()
            try:
                async with self.client() as client:
                    return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        with self.only(pid):
            await until(answers, STARTUP, f"process {pid} to serve")

    async def lease_pid(self, task_id: str) -> int:
        """The pid of the process whose worker runs the task (``host:pid:…`` leases)."""
        assert self.owner is not None
        owner: str | None = await self.owner.fetchval(
            "SELECT lease_owner FROM tasks WHERE id = $1", uuid.UUID(task_id)
        )
        assert owner is not None
        return int(owner.split(":")[1])


@pytest.fixture
async def hub(fake_llm: FakeLLMServer) -> AsyncIterator[Hub]:
    fake_llm.reset()
    # A short path: the embedded server's unix socket lives in it.
    data_dir = Path(tempfile.mkdtemp(prefix="ohp-", dir="/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")}
    env.update(
        OPSHUB_DATA_DIR=str(data_dir),
        OPSHUB_OPENAI_BASE_URL=f"{fake_llm.base_url}/v1",
        OPSHUB_WORKER_CONCURRENCY="1",  # two tasks at once run one in each worker process
        OPSHUB_LOG_JSON="true",  # the test reads the supervisor's log
        OPSHUB_CREDENTIAL_CACHE_SECONDS="3600",  # only an invalidation can drop a cached key
        OPSHUB_LOGIN_ATTEMPTS_PER_MINUTE=str(LOGIN_LIMIT),
        OPSHUB_LLM_MAX_RETRIES="0",
        OPSHUB_CREDENTIAL_CHECK_MINUTES="0",
        OPSHUB_MEMORY_EXTRACTION="false",
        OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS="2",
    )
    log = data_dir / "serve.log"
    supervisor = _spawn_serve(port, env, log)
    hub = Hub(supervisor, data_dir, f"http://127.0.0.1:{port}", log)
    try:
        yield hub
    finally:
        if hub.owner is not None:
            await hub.owner.close()
        if supervisor.poll() is None:
            for child in hub.children():
                child.kill()
            supervisor.kill()
        supervisor.wait(30)
        shutil.rmtree(data_dir, ignore_errors=True)
        fake_llm.reset()


def _spawn_serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [
                sys.executable,
                *("-m", "opshub", "serve", "--processes", "2", "--api-processes", "2"),
                *("--port", str(port)),
            ],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


async def tenant(hub: Hub) -> TenantHandle:
    async with transaction(hub.owner) as conn:  # type: ignore[arg-type]
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        created, key = await tenants_service.create_tenant(
            conn, name="Acme Outdoor", owner_email=email, password="correct horse battery"
        )
    return TenantHandle(created.id, "Acme Outdoor", email, "correct horse battery", key)


async def submit(hub: Hub, owner: TenantHandle, text: str) -> str:
    async with hub.client() as client:
        response = await client.post(
            "/v1/tasks", json={"crew": "assistant", "input": text}, headers=owner.headers
        )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def status(hub: Hub, owner: TenantHandle, task_id: str, wanted: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        async with hub.client() as client:
            task: dict[str, Any] = (
                await client.get(f"/v1/tasks/{task_id}", headers=owner.headers)
            ).json()
        return task if task["status"] == wanted else None

    return await until(reached, 60, f"task {task_id} {wanted}")


async def test_serve_processes_share_what_one_process_kept_in_memory(
    hub: Hub, fake_llm: FakeLLMServer
) -> None:
    apis, workers = await until(lambda: _two_of_each(hub), STARTUP, "two API and two workers")
    for pid in apis:
        await hub.ready(pid)
    await until(lambda: _at_least(hub.workers_started, 2), STARTUP, "both workers to start")
    pg = hub.data_dir / "pg"
    hub.owner = await create_pool(f"postgresql://postgres@/opshub?host={pg}", size=2)
    owner = await tenant(hub)
    async with hub.client() as client:
        first_key = await store_openai_key(client, owner)

    # Live events: the task runs in a worker process, its stream is served by an API process.
    marker = f"live-{uuid.uuid4().hex[:8]}"
    fake_llm.script_openai("Streamed across processes.", latency=3.0)
    task_id = await submit(hub, owner, f"Summarise {marker}")
    assert await _lease_pid_when_asked(hub, fake_llm, marker, task_id) in workers
    async with hub.client() as client:
        with hub.only(apis[1]):
            stream = client.stream("GET", f"/v1/tasks/{task_id}/events", headers=owner.headers)
            response = await stream.__aenter__()
            lines = response.aiter_lines()
            assert await anext(lines) == ": watching"
        opened = time.monotonic()
        try:
            seen: list[str] = []
            async for line in lines:
                if line.startswith("event: "):
                    seen.append(line.removeprefix("event: "))
                    if seen[-1] == "task.succeeded":
                        break
        finally:
            await stream.__aexit__(None, None, None)
    arrived = time.monotonic() - opened
    assert seen[-1] == "task.succeeded", seen
    # The answer came ~3 s after the call: live, not at the watcher's next database read.
    assert arrived < SSE_KEEPALIVE - 5, arrived

    # A cancel sent to an API process stops the worker's crew before its next model call.
    marker = f"cancel-{uuid.uuid4().hex[:8]}"
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})], latency=3.0)
    fake_llm.script_openai("should never be asked for")
    task_id = await submit(hub, owner, f"How many clients? {marker}")
    await _lease_pid_when_asked(hub, fake_llm, marker, task_id)
    with hub.only(apis[0]):
        async with hub.client() as client:
            response = await client.post(f"/v1/tasks/{task_id}/cancel", headers=owner.headers)
        assert response.status_code == 202, response.text
    await status(hub, owner, task_id, "cancelled")
    assert len(calls_for(fake_llm, marker)) == 1
    assert fake_llm.pending("openai") == 1  # the second answer was never asked for
    fake_llm.reset()

    # The login limit counts the attempts made at either API process (in one minute's window).
    wrong = {"email": owner.email, "password": "not the password"}
    await until(_early_in_a_minute, 60, "a window with room for the attempts")
    with hub.only(apis[0]):
        async with hub.client() as client:
            for _ in range(LOGIN_LIMIT):
                assert (await client.post("/v1/auth/token", json=wrong)).status_code == 401
    with hub.only(apis[1]):
        async with hub.client() as client:
            assert (await client.get("/healthz")).status_code == 200
            refused = await client.post("/v1/auth/token", json=wrong)
    assert refused.status_code == 429, refused.text

    # A key changed at one API process is the key both workers use next, though each had the
    # old one cached.
    async def one_task_each(label: str) -> list[str]:
        markers = [f"{label}-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        fake_llm.script_openai("Done.", latency=2.0, times=2)
        ids = [await submit(hub, owner, f"Summarise {m}") for m in markers]
        runners = {
            await _lease_pid_when_asked(hub, fake_llm, m, t)
            for m, t in zip(markers, ids, strict=True)
        }
        assert runners == set(workers), "each worker process runs one of the two tasks"
        for task_id in ids:
            await status(hub, owner, task_id, "succeeded")
        return [call.api_key for m in markers for call in calls_for(fake_llm, m)]

    assert await one_task_each("old-key") == [first_key, first_key]
    with hub.only(apis[0]):
        async with hub.client() as client:
            new_key = await store_openai_key(client, owner)
    assert await one_task_each("new-key") == [new_key, new_key]

    # A child killed outright is started again; the embedded server stays up meanwhile.
    psutil.Process(workers[0]).kill()
    await until(lambda: _replaced(hub, workers), 30, "the killed worker's successor")
    await until(lambda: _at_least(hub.workers_started, 3), STARTUP, "the successor to start")
    assert await hub.owner.fetchval("SELECT 1") == 1

    # SIGTERM stops the hub and its PostgreSQL with it: no child, no server left.
    postmaster = int((pg / "postmaster.pid").read_text().split()[0])
    children = hub.children()
    await hub.owner.close()
    hub.owner = None
    hub.supervisor.send_signal(signal.SIGTERM)
    assert hub.supervisor.wait(60) == 0, hub.output()
    assert not any(child.is_running() for child in children)
    await until(lambda: _gone(postmaster), 20, "the embedded PostgreSQL to stop")
    assert not (pg / "postmaster.pid").exists()


def _serving(process: psutil.Process) -> bool:
    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:  # gone, or a zombie (pgserver's short-lived helpers)
        return False


async def _two_of_each(hub: Hub) -> tuple[list[int], list[int]] | None:
    assert hub.supervisor.poll() is None, hub.output()
    apis, workers = hub.pids("api"), hub.pids("worker")
    return (apis, workers) if len(apis) == 2 and len(workers) == 2 else None


async def _at_least(count: Callable[[], int], wanted: int) -> bool:
    return count() >= wanted


async def _replaced(hub: Hub, before: list[int]) -> int | None:
    """The new worker's pid, once there are two again."""
    pids = hub.pids("worker")
    fresh = [pid for pid in pids if pid not in before]
    return fresh[0] if len(pids) == 2 and fresh else None


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                yield json.loads(line)


async def _early_in_a_minute() -> bool:
    return time.time() % 60 < 40


async def _gone(pid: int) -> bool:
    return not psutil.pid_exists(pid)


async def _lease_pid_when_asked(hub: Hub, fake: FakeLLMServer, marker: str, task_id: str) -> int:
    async def asked() -> bool:
        return bool(calls_for(fake, marker))

    await until(asked, 60, f"the model call of {marker}")
    return await hub.lease_pid(task_id)
