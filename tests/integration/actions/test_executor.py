"""The executor loop: approved actions run once, failures are sorted, tasks settle.

In this process (shared database): a refused token marks the credential invalid and fails the
action at once; a rate limit is waited out and the action still makes one product; a task
awaiting approval succeeds once its last action is executed, and its event stream says so.
With real ``opshub worker`` processes (a database of their own): a worker SIGKILLed while the
shop holds back its answer to ``productCreate`` loses the action to another worker after the
lease, and the shop still ends up with one product.
"""

from __future__ import annotations

import asyncio
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
from typing import TypeVar

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.actions.kinds import ActionKind
from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, create_pool, dsn, transaction
from opshub.db.migrate import migrate
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle
from tests.fakes.saleor import FakeSaleorServer
from tests.integration.actions.test_service import (
    audit_events,
    decide,
    executor_running,
    make_task,
    product_payload,
    propose,
    saleor,
    saleor_fake,
    store_saleor_key,
    wait_for_action,
)

__all__ = ["saleor", "saleor_fake"]  # fixtures, shared with test_service
REPO = Path(__file__).resolve().parents[3]
STARTUP = 90.0  # a worker imports CrewAI before it starts its loops; the machine is shared
T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def replay(client: AsyncClient, tenant: TenantHandle, task_id: uuid.UUID) -> list[str]:
    """The event types of a finished task's SSE replay."""
    response = await client.get(f"/v1/tasks/{task_id}/events", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]


# --- In this process. ----------------------------------------------------------------------------


async def test_a_refused_token_marks_the_credential_invalid_and_fails_the_action(
    client: AsyncClient,
    app: FastAPI,
    urls: DatabaseUrls,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    saleor: FakeSaleorServer,
) -> None:
    token = f"staff-{uuid.uuid4().hex[:8]}"
    saleor.tokens[token] = saleor.tokens["staff-token"]
    await store_saleor_key(client, tenant_a, saleor, token=token)
    saleor.expired_tokens.add(token)  # the shop stops accepting it after it was stored
    task_id = await make_task(owner_pool, tenant_a.id)
    action = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("AUTH-1"))  # fmt: skip
    async with executor_running(urls, app_pool, app, settings):
        await decide(app_pool, tenant_a.id, action.id, approve=True)
        row = await wait_for_action(owner_pool, action.id, {"executed", "failed"})

    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["error"]["code"] == "credential_invalid"
    assert row["error"]["provider"] == "saleor"
    assert saleor.calls("productCreate") == 0
    credentials = await client.get("/v1/credentials", headers=tenant_a.headers)
    [shop] = [c for c in credentials.json() if c["provider"] == "saleor"]
    assert shop["status"] == "invalid"
    assert await audit_events(owner_pool, action.id) == [
        "proposed", "approved", "execution_started", "failed",
    ]  # fmt: skip
    task = (await client.get(f"/v1/tasks/{task_id}", headers=tenant_a.headers)).json()
    assert task["status"] == "succeeded" and task["pending_actions"] == []


async def test_a_rate_limit_is_waited_out_and_the_product_made_once(
    client: AsyncClient,
    app: FastAPI,
    urls: DatabaseUrls,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    saleor: FakeSaleorServer,
) -> None:
    await store_saleor_key(client, tenant_a, saleor)
    task_id = await make_task(owner_pool, tenant_a.id)
    action = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("RATE-1"))  # fmt: skip
    # More 429s than the client retries itself: the action has to come back later.
    saleor.fail_next(429, retry_after=0.2, times=6)
    async with executor_running(urls, app_pool, app, settings):
        await decide(app_pool, tenant_a.id, action.id, approve=True)
        row = await wait_for_action(owner_pool, action.id, {"executed", "failed"})

    assert row["status"] == "executed", row["error"]
    assert row["attempts"] >= 2
    assert saleor.calls("productCreate") == 1
    events = await audit_events(owner_pool, action.id)
    assert "retry_scheduled" in events and events[-1] == "executed"
    assert events.count("executed") == 1


async def test_a_task_awaiting_approval_succeeds_once_its_action_is_executed(
    client: AsyncClient,
    app: FastAPI,
    urls: DatabaseUrls,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    saleor: FakeSaleorServer,
) -> None:
    await store_saleor_key(client, tenant_a, saleor)
    task_id = await make_task(owner_pool, tenant_a.id)
    action = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("SETTLE-1"))  # fmt: skip
    async with executor_running(urls, app_pool, app, settings):
        approved = await client.post(f"/v1/actions/{action.id}/approve", headers=tenant_a.headers)
        assert approved.status_code == 200, approved.text
        await wait_for_action(owner_pool, action.id, {"executed", "failed"})

    task = (await client.get(f"/v1/tasks/{task_id}", headers=tenant_a.headers)).json()
    assert task["status"] == "succeeded"
    assert task["result"] == "I proposed the product; it waits for your approval."
    assert task["pending_actions"] == []
    assert await replay(client, tenant_a, task_id) == [
        "action.approved", "action.executed", "task.succeeded",
    ]  # fmt: skip
    read = (await client.get(f"/v1/actions/{action.id}", headers=tenant_a.headers)).json()
    assert read["status"] == "executed" and read["executed_at"]
    assert read["outcome"]["sku"] == "SETTLE-1"


# --- Real worker processes. ----------------------------------------------------------------------


@dataclass
class Hub:
    """An API without workers on a database of its own, and pools for checks and proposals."""

    client: AsyncClient
    owner: asyncpg.Pool
    app_pool: asyncpg.Pool
    urls: DatabaseUrls
    settings: Settings

    async def tenant(self, name: str) -> TenantHandle:
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        async with transaction(self.owner) as conn:
            tenant, key = await tenants_service.create_tenant(
                conn, name=name, owner_email=email, password="correct horse battery"
            )
        return TenantHandle(tenant.id, name, email, "correct horse battery", key)

    def spawn_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")}
        env.update(
            OPSHUB_DATABASE_URL=dsn(self.urls.owner),
            OPSHUB_DATABASE_APP_URL=dsn(self.urls.app),
            OPSHUB_DATA_DIR=str(self.settings.data_dir),
            OPSHUB_ALLOW_INTERNAL_URLS="true",
            OPSHUB_PROCESSES="1",  # the process spawned is the worker
            OPSHUB_ACTION_LEASE_SECONDS="2",
            OPSHUB_CREDENTIAL_CACHE_SECONDS="0",
            OPSHUB_CREDENTIAL_CHECK_MINUTES="0",
            OPSHUB_LOG_LEVEL="INFO",
        )
        return env


@pytest.fixture
async def hub(fresh_database: DatabaseUrls, settings: Settings) -> AsyncIterator[Hub]:
    await migrate(fresh_database)
    application = create_app(settings, fresh_database)
    owner = await create_pool(fresh_database.owner, size=2)
    app_pool = await create_pool(fresh_database.app, size=2)
    try:
        async with application.router.lifespan_context(application):
            transport = ASGITransport(app=application)
            async with AsyncClient(transport=transport, base_url="http://opshub") as client:
                yield Hub(client, owner, app_pool, fresh_database, settings)
    finally:
        await app_pool.close()
        await owner.close()


@pytest.fixture
def spawn_worker(hub: Hub, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "opshub", "worker", "--concurrency", "2"],
                cwd=REPO,
                env=hub.spawn_env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    try:
        yield spawn
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


async def test_an_action_whose_worker_was_killed_mid_call_makes_one_product(
    hub: Hub, spawn_worker: Callable[[], subprocess.Popen[bytes]], saleor: FakeSaleorServer
) -> None:
    tenant = await hub.tenant("Acme Outdoor")
    await store_saleor_key(hub.client, tenant, saleor)
    task_id = await make_task(hub.owner, tenant.id)
    action = await propose(hub.app_pool, tenant.id, task_id, ActionKind.product_create,
                           product_payload("KILL-1"))  # fmt: skip
    # The shop creates the product, then keeps the worker waiting for the answer.
    saleor.delay_operation("productCreate", 30.0)
    await decide(hub.app_pool, tenant.id, action.id, approve=True)
    doomed = spawn_worker()

    async def product_created() -> bool:
        return saleor.calls("productCreate") == 1

    await until(product_created, STARTUP, "the first worker's productCreate")
    async with hub.owner.acquire() as conn:
        holder = await conn.fetchval("SELECT lease_owner FROM actions WHERE id = $1", action.id)
    assert holder.startswith(f"executor:{socket.gethostname()}:{doomed.pid}:")
    rescuer = spawn_worker()
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)

    row = await wait_for_action(hub.owner, action.id, {"executed", "failed"}, within=STARTUP)
    assert row["status"] == "executed", row["error"]
    assert row["attempts"] == 2
    assert saleor.calls("productCreate") == 1
    mine = [p for p in saleor.store.products if p.get("external_reference") == str(action.id)]
    assert len(mine) == 1
    assert [v["sku"] for p in mine for v in p["variants"]] == ["KILL-1"]
    assert await audit_events(hub.owner, action.id) == [
        "proposed", "approved", "execution_started", "execution_started", "executed",
    ]  # fmt: skip
    async with hub.owner.acquire() as conn:
        executed = await conn.fetch(
            "SELECT data FROM outbox WHERE event_type = 'action.executed'"
            " AND data->>'action_id' = $1",
            str(action.id),
        )
        status = await conn.fetchval("SELECT status FROM tasks WHERE id = $1", task_id)
    assert len(executed) == 1
    assert executed[0]["data"]["outcome"]["sku"] == "KILL-1"
    assert status == "succeeded"
    assert rescuer.poll() is None
