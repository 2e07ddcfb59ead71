"""Task webhooks: a finished task with a ``webhook_url`` is POSTed to it, signed, and retried.

A local receiver (a small Starlette app on loopback) records every delivery; it can be told to
fail the first few. The signature is ``X-Opshub-Signature: sha256=<HMAC-SHA256(secret, raw
body)>`` with the tenant's webhook secret (``POST /v1/webhook-secret``, shown once).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from httpx import AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opshub.db.engine import transaction
from opshub.tenants import service as tenants_service
from opshub.tenants.models import Role
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.fakes.server import BackgroundServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status


@dataclass(frozen=True)
class Delivery:
    body: bytes
    headers: dict[str, str]
    answered: int
    at: float


class WebhookReceiver(BackgroundServer):
    """Records each POST to /hook; answers 500 to the first ``fail_first`` of them, then 200."""

    name = "webhook-receiver"

    def __init__(self, fail_first: int = 0) -> None:
        super().__init__(Starlette(routes=[Route("/hook", self._hook, methods=["POST"])]))
        self.fail_first = fail_first
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            status = 500 if len(self._deliveries) < self.fail_first else 200
            self._deliveries.append(Delivery(body, dict(request.headers), status, time.monotonic()))
        return Response(status_code=status)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    async def wait_for(self, count: int, within: float = 20.0) -> list[Delivery]:
        """The deliveries once ``count`` were answered 200."""
        deadline = time.monotonic() + within
        while True:
            found = self.deliveries()
            if sum(d.answered == 200 for d in found) >= count:
                return found
            assert time.monotonic() < deadline, f"got {len(found)} deliveries: {found}"
            await asyncio.sleep(0.05)


@pytest.fixture
def flaky_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(fail_first=2) as receiver:
        yield receiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


async def rotate_secret(client: AsyncClient, tenant: TenantHandle) -> str:
    response = await client.post("/v1/webhook-secret", headers=tenant.headers)
    assert response.status_code == 201, response.text
    shown = response.json()
    assert shown["header"] == "X-Opshub-Signature"
    assert shown["algorithm"] == "sha256"
    secret: str = shown["secret"]
    assert len(secret) >= 32
    return secret


def expected_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def run_task_with_webhook(
    client: AsyncClient, tenant: TenantHandle, fake_llm: FakeLLMServer, url: str, answer: str
) -> dict[str, Any]:
    fake_llm.script_openai(answer, usage=(30, 6))
    response = await client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "Tell the ops channel how we did", "webhook_url": url},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    task = await wait_for_status(client, tenant, response.json()["id"])
    assert task["status"] == "succeeded", task
    return task


async def test_a_finished_task_is_posted_signed_and_retried_after_server_errors(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    flaky_receiver: WebhookReceiver,
    owner_pool: asyncpg.Pool,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    secret = await rotate_secret(hub_client, tenant_a)

    task = await run_task_with_webhook(
        hub_client, tenant_a, fake_llm, flaky_receiver.url, "We closed 3 deals."
    )
    deliveries = await flaky_receiver.wait_for(1, within=30.0)

    assert [d.answered for d in deliveries] == [500, 500, 200]
    assert len({d.body for d in deliveries}) == 1, "every attempt carries the same body"
    for delivery in deliveries:
        assert delivery.headers["x-opshub-signature"] == expected_signature(secret, delivery.body)
        assert delivery.headers["content-type"] == "application/json"
    # Backoff: the second wait is longer than the first (1 s, then 2 s, polled each second).
    first_gap = deliveries[1].at - deliveries[0].at
    second_gap = deliveries[2].at - deliveries[1].at
    assert first_gap >= 0.9 and second_gap >= 1.9, (first_gap, second_gap)

    payload = json.loads(deliveries[-1].body)
    assert payload["event"] == "task.succeeded"
    assert payload["task"]["id"] == task["id"]
    assert payload["task"]["status"] == "succeeded"
    assert payload["task"]["result"] == "We closed 3 deals."
    assert secret not in deliveries[-1].body.decode()

    # The sender records the outcome once the receiver has answered: poll for it.
    deadline = time.monotonic() + 10
    while True:
        row = await owner_pool.fetchrow(
            "SELECT attempts, last_status, delivered_at FROM webhook_deliveries WHERE task_id = $1",
            task["id"],
        )
        assert row is not None
        if row["delivered_at"] is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert row["delivered_at"] is not None
    assert (row["attempts"], row["last_status"]) == (3, 200)


async def test_rotating_the_secret_signs_later_deliveries_with_the_new_one(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    receiver: WebhookReceiver,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    old_secret = await rotate_secret(hub_client, tenant_a)
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "First report.")
    (before,) = await receiver.wait_for(1)

    new_secret = await rotate_secret(hub_client, tenant_a)
    assert new_secret != old_secret
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "Second report.")
    after = (await receiver.wait_for(2))[-1]

    assert before.headers["x-opshub-signature"] == expected_signature(old_secret, before.body)
    assert after.headers["x-opshub-signature"] == expected_signature(new_secret, after.body)
    assert after.headers["x-opshub-signature"] != expected_signature(old_secret, after.body)
    assert json.loads(after.body)["task"]["result"] == "Second report."


async def test_only_an_admin_or_owner_may_make_the_webhook_secret(
    hub_client: AsyncClient, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    async with transaction(owner_pool) as conn:
        _, member_key = await tenants_service.create_api_key(
            conn, tenant_id=tenant_a.id, name="ci", role=Role.member
        )
    response = await hub_client.post(
        "/v1/webhook-secret", headers={"Authorization": f"Bearer {member_key}"}
    )
    assert response.status_code == 403, response.text
