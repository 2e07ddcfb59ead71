"""A hub with its worker and scheduler in process, against the fake model server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls
from tests.conftest import TenantHandle
from tests.fakes.amazon import FakeAmazonCreators
from tests.fakes.google_ads import FakeGoogleAds
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.llm import FakeLLMServer
from tests.fakes.meta import FakeMetaGraph
from tests.integration.runtime.connected import Connected

TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_text="Final answer from the fake model.") as server:
        yield server


@pytest.fixture(scope="session")
def connected() -> Iterator[Connected]:
    """The services tenants connect, one fake each; tenants get their own accounts in them."""
    with (
        FakeGoogleAds() as google,
        FakeMetaGraph() as meta,
        FakeLinkedIn() as linkedin,
        FakeAmazonCreators() as amazon,
    ):
        yield Connected(google=google, meta=meta, linkedin=linkedin, amazon=amazon)


@pytest.fixture(scope="session")
def runtime_settings(settings: Settings, fake_llm: FakeLLMServer, connected: Connected) -> Settings:
    return settings.model_copy(
        update={
            **connected.settings(),
            "openai_base_url": f"{fake_llm.base_url}/v1",
            "anthropic_base_url": fake_llm.base_url,
            "credential_cache_seconds": 0,
            "llm_max_retries": 0,
            "task_lease_seconds": 3.0,
            "task_retry_backoff_seconds": 0.2,
            "worker_shutdown_grace_seconds": 2.0,
            "credential_check_minutes": 0,
            # The crew's own model calls only: tests/integration/memory covers the extraction.
            "memory_extraction": False,
        }
    )


@pytest.fixture(scope="package")
async def hub(runtime_settings: Settings, urls: DatabaseUrls) -> AsyncIterator[FastAPI]:
    """The hub with its workers, for this package only: left running, its worker would claim the
    tasks that later tests expect to stay queued."""
    application = create_app(runtime_settings, urls, run_workers=True)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def hub_client(hub: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=hub), base_url="http://opshub") as c:
        yield c


async def store_openai_key(
    client: AsyncClient, tenant: TenantHandle, key: str | None = None
) -> str:
    key = key or f"sk-{tenant.name.split()[0].lower()}-{uuid.uuid4().hex[:16]}"
    response = await client.put(
        "/v1/credentials/openai", json={"secret": {"api_key": key}}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return key


async def wait_for_status(
    client: AsyncClient,
    tenant: TenantHandle,
    task_id: str,
    statuses: set[str] = TERMINAL,
    within: float = 30.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/v1/tasks/{task_id}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"task stayed {task['status']}"
        await asyncio.sleep(0.05)


async def memories_written(pool: asyncpg.Pool, task_id: str, within: float = 30.0) -> None:
    """Wait for an ended task's memory write-back: the worker writes them after the task ends."""
    deadline = time.monotonic() + within
    while await pool.fetchval("SELECT memory_pending FROM tasks WHERE id = $1", uuid.UUID(task_id)):
        assert time.monotonic() < deadline, "the run's memories were never written"
        await asyncio.sleep(0.05)
