"""Real processes, and servers of the tests' own that the tests kill and start again.

Each fault test gets a PostgreSQL (pgserver's binaries, its own data directory) and a Redis
(``redis-server`` on a free loopback port) that nothing else uses, never the machine's shared
ones; opshub runs as processes of its own against them (``opshub <command>``, forked from a
server that made their imports once: ``tests/faults/forkserver.py``), and the model is the fake
on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import psutil
import pytest
from sqlalchemy import make_url

from opshub.db.engine import DatabaseUrls, create_pool, dsn, transaction
from opshub.db.migrate import migrate
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.fakes.server import RedisProcess, free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgserver

REPO = Path(__file__).resolve().parents[2]
STARTUP = 120.0  # a worker imports CrewAI before its first claim; the machine is shared
TERMINAL = {"succeeded", "failed", "cancelled"}
T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    """Poll ``check`` until it returns something other than None or False."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.1)


class FaultPostgres:
    """A PostgreSQL 16 + pgvector of the test's own, killed with SIGKILL and started again.

    ``migrated``: a stopped server's data directory with opshub's schema, copied to start from
    (the session makes one, so each test doesn't run initdb and every migration again)."""

    def __init__(self, root: Path, migrated: Path | None = None) -> None:
        self._root = root
        self._pgdata = root / "pg"
        if migrated is not None:  # as it is: its files belong to the server's system user
            subprocess.run(["cp", "-a", str(migrated), str(self._pgdata)], check=True)  # noqa: S603,S607
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Stopped and removed by this class: pgserver's own stop knows only the first server.
            self._server = pgserver.get_server(  # type: ignore[attr-defined]
                self._pgdata, cleanup_mode=None
            )
        if migrated is None:
            self._server.psql("CREATE DATABASE opshub;")
        uri = make_url(self._server.get_uri("opshub"))
        self._socket_dir = str(uri.query["host"])
        owner = uri.set(drivername="postgresql+asyncpg")
        self.urls = DatabaseUrls(
            owner=owner.render_as_string(hide_password=False),
            app=owner.set(username="opshub_app").render_as_string(hide_password=False),
        )

    def _postmaster(self) -> psutil.Process | None:
        pid_file = self._pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        try:
            return psutil.Process(int(pid_file.read_text().split()[0]))
        except psutil.NoSuchProcess:
            return None

    def kill(self) -> None:
        """As a crash does: the postmaster and every backend at once."""
        postmaster = self._postmaster()
        assert postmaster is not None, "PostgreSQL is not running"
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes, timeout=10)

    def start(self) -> None:
        """Start again after a kill: crash recovery first, which can take a while here."""
        args = ["-w", "-t", "120", "-o", '-h ""', "-o", f"-k {self._socket_dir}"]
        pgserver.pg_ctl(  # type: ignore[attr-defined]
            [*args, "-l", str(self._pgdata / "log"), "start"],
            pgdata=self._pgdata,
            user=self._server.system_user,
            timeout=150,
        )

    def stop(self) -> None:
        """A clean shutdown: the data directory can be copied after it."""
        pgserver.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"],
            pgdata=self._pgdata,
            user=self._server.system_user,
            timeout=60,
        )

    @property
    def pgdata(self) -> Path:
        return self._pgdata

    def remove(self) -> None:
        if self._postmaster() is not None:
            self.kill()
        self._server.cleanup()
        shutil.rmtree(self._root, ignore_errors=True)


class ForkedProcess:
    """A child of the fork server, driven as a ``subprocess.Popen`` is."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        return self._server.exit_codes.get(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        codes = self._server.exit_codes
        with self._server.exited:
            if not self._server.exited.wait_for(lambda: self.pid in codes, timeout):
                raise subprocess.TimeoutExpired(f"opshub ({self.pid})", timeout or 0)
            return self._server.exit_codes[self.pid]

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """``tests/faults/forkserver.py`` for the session: started at once, waited for before the
    first test."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.forkserver"],
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.exit_codes: dict[int, int] = {}
        self.exited = threading.Condition()
        self._answers: queue.Queue[dict[str, int]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._ready = False
        self._lock = threading.Lock()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message: dict[str, int] = json.loads(line)
            if "exited" in message:
                with self.exited:
                    self.exit_codes[message["exited"]] = message["code"]
                    self.exited.notify_all()
            else:
                self._answers.put(message)
        self._answers.put({})  # the server ended

    def _answer(self, within: float = 10.0) -> dict[str, int]:
        message = self._answers.get(timeout=within)
        assert message, "the fork server ended; its imports failed?"
        return message

    def wait_ready(self) -> None:
        """Until the server has imported (CrewAI's import: tens of seconds of CPU)."""
        with self._lock:
            if not self._ready:
                assert "ready" in self._answer(within=3 * STARTUP)
                self._ready = True

    def spawn(self, args: list[str], env: dict[str, str], log: Path) -> ForkedProcess:
        self.wait_ready()
        with self._lock:
            assert self._process.stdin is not None
            request = {"args": args, "env": env, "log": str(log)}
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            return ForkedProcess(self, self._answer()["pid"])

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@dataclass
class OpshubProcess:
    """``opshub <command>`` with its output in a log file."""

    process: ForkedProcess | subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def lease_prefix(self) -> str:
        """How this process's task leases begin (``Worker.worker_id``)."""
        return f"{socket.gethostname()}:{self.process.pid}:"

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]


@dataclass
class Cluster:
    """One test's servers and opshub processes, and an owner pool for the test's own checks."""

    postgres: FaultPostgres
    redis: RedisProcess
    fake_llm: FakeLLMServer
    data_dir: Path
    logs: Path
    owner: asyncpg.Pool
    forks: ForkServer
    processes: list[OpshubProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")}
        env.update(
            OPSHUB_DATABASE_URL=dsn(self.postgres.urls.owner),
            OPSHUB_DATABASE_APP_URL=dsn(self.postgres.urls.app),
            OPSHUB_REDIS_URL=self.redis.url,
            OPSHUB_DATA_DIR=str(self.data_dir),
            OPSHUB_OPENAI_BASE_URL=f"{self.fake_llm.base_url}/v1",
            OPSHUB_TASK_LEASE_SECONDS="2",
            OPSHUB_TASK_RETRY_BACKOFF_SECONDS="0.2",
            OPSHUB_CREDENTIAL_CACHE_SECONDS="0",
            OPSHUB_LLM_MAX_RETRIES="0",
            OPSHUB_CREDENTIAL_CHECK_MINUTES="0",
            OPSHUB_MEMORY_EXTRACTION="false",
            OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS="5",
            OPSHUB_ALLOW_INTERNAL_URLS="true",
            OPSHUB_LOG_LEVEL="INFO",
            OPSHUB_PROCESSES="1",  # the process spawned is the hub (leases name its pid)
        )
        env.update(overrides)
        return env

    def spawn(
        self, *command: str, http: bool = False, forked: bool = True, **env: str
    ) -> OpshubProcess:
        """``http``: the command serves the API; it gets a port of its own. ``forked``: from
        the fork server; else ``python -m opshub`` as a deployment starts it, for a test that
        times the process (a forked API served the quiet tenant's reads ~3x slower, alone)."""
        port = free_port() if http else None
        args = [*command, "--port", str(port)] if http else list(command)
        log = self.logs / f"{command[0]}-{len(self.processes)}.log"
        process: ForkedProcess | subprocess.Popen[bytes]
        if forked:
            process = self.forks.spawn(args, self.env(**env), log)
        else:
            with log.open("wb") as sink:
                process = subprocess.Popen(  # noqa: S603 - our own CLI
                    [sys.executable, "-X", "faulthandler", "-m", "opshub", *args],
                    cwd=REPO,
                    env=self.env(**env),
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
        started = OpshubProcess(process, log, port)
        self.processes.append(started)
        return started

    async def serving(self, api: OpshubProcess) -> None:
        async def healthy() -> bool:
            assert api.alive(), api.output()
            try:
                async with httpx.AsyncClient(base_url=api.base_url) as client:
                    return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await until(healthy, STARTUP, "the API to listen")

    async def tenant(self, name: str) -> TenantHandle:
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        async with transaction(self.owner) as conn:
            tenant, key = await tenants_service.create_tenant(
                conn, name=name, owner_email=email, password=password
            )
        return TenantHandle(tenant.id, name, email, password, key)

    async def count(self, sql: str, *args: Any) -> int:
        value: int = await self.owner.fetchval(sql, *args)
        return value


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_text="Final answer from the fake model.") as server:
        yield server


@pytest.fixture(scope="session")
def forks() -> Iterator[ForkServer]:
    server = ForkServer()
    try:
        yield server
    finally:
        server.close()


def short_root() -> Path:
    """A short path: a server's unix socket lives in it, and socket paths are capped at 107
    bytes."""
    return Path(tempfile.mkdtemp(prefix="ohf-", dir="/tmp"))


@pytest.fixture(scope="session")
def migrated_pgdata() -> Iterator[Path]:
    """A stopped PostgreSQL's data directory with opshub's schema, for every test to copy."""
    postgres = FaultPostgres(short_root())
    try:
        asyncio.run(migrate(postgres.urls))
        postgres.stop()
        yield postgres.pgdata
    finally:
        postgres.remove()


@pytest.fixture
async def cluster(
    fake_llm: FakeLLMServer, forks: ForkServer, migrated_pgdata: Path, tmp_path: Path
) -> AsyncIterator[Cluster]:
    fake_llm.reset()
    # No test starts while the fork server imports: a test that times its processes (the noisy
    # tenant's) would measure that import too.
    await asyncio.to_thread(forks.wait_ready)
    root = short_root()
    postgres = FaultPostgres(root, migrated_pgdata)
    redis = RedisProcess()
    redis.start()
    owner = await create_pool(postgres.urls.owner, size=2)
    cluster = Cluster(postgres, redis, fake_llm, root / "data", tmp_path, owner, forks)
    try:
        yield cluster
    finally:
        for started in cluster.processes:
            if started.alive():
                started.process.kill()
            started.process.wait(timeout=30)
        owner.terminate()
        redis.kill()
        postgres.remove()
