"""Task webhooks: a finished task with a ``webhook_url`` is POSTed to it, signed, and retried.

A local receiver (a small Starlette app on loopback) records every delivery; it can be told to
fail the first few. Deliveries are verified as a receiver would, with the Standard Webhooks
reference library; a tenant's old secret still signs ``X-Opshub-Signature`` until it rotates.
Each task's delivery log lists its attempts; a delivery is sent again on request.
"""

from __future__ import annotations

import asyncio
import base64
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
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opshub.auth.models import Role
from opshub.db.engine import transaction
from opshub.tenants import service as tenants_service
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


async def rotate_secret(
    client: AsyncClient, tenant: TenantHandle, overlap_seconds: int | None = None
) -> str:
    body = None if overlap_seconds is None else {"overlap_seconds": overlap_seconds}
    response = await client.post("/v1/webhook-secret", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    shown = response.json()
    assert shown["header"] == "webhook-signature"
    secret: str = shown["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    return secret


def verifies(secret: str, delivery: Delivery) -> bool:
    """What a receiver does with the Standard Webhooks reference library."""
    try:
        Webhook(secret).verify(delivery.body, delivery.headers)
    except WebhookVerificationError:
        return False
    return True


def legacy_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def delivery_log(
    client: AsyncClient, tenant: TenantHandle, task_id: str, attempts: int
) -> list[dict[str, Any]]:
    """The task's deliveries once the first has logged ``attempts`` attempts."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.get(f"/v1/tasks/{task_id}/webhooks", headers=tenant.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        if items and len(items[0]["attempts"]) >= attempts:
            return items
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.05)


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
) -> None:
    await store_openai_key(hub_client, tenant_a)
    secret = await rotate_secret(hub_client, tenant_a)

    task = await run_task_with_webhook(
        hub_client, tenant_a, fake_llm, flaky_receiver.url, "We closed 3 deals."
    )
    deliveries = await flaky_receiver.wait_for(1, within=30.0)

    assert [d.answered for d in deliveries] == [500, 500, 200]
    assert len({d.body for d in deliveries}) == 1, "every attempt carries the same body"
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1, "and the same webhook-id"
    for delivery in deliveries:
        assert verifies(secret, delivery)
        assert delivery.headers["content-type"] == "application/json"
        assert "x-opshub-signature" not in delivery.headers  # no old secret to sign it with
    # Backoff: the second wait is longer than the first (1 s, then 2 s, polled each second).
    first_gap = deliveries[1].at - deliveries[0].at
    second_gap = deliveries[2].at - deliveries[1].at
    assert first_gap >= 0.9 and second_gap >= 1.9, (first_gap, second_gap)

    payload = json.loads(deliveries[-1].body)
    assert payload["event"] == "task.succeeded"
    assert payload["task"]["id"] == task["id"]
    assert payload["task"]["result"] == "We closed 3 deals."
    assert secret not in deliveries[-1].body.decode()

    [logged] = await delivery_log(hub_client, tenant_a, task["id"], attempts=3)
    assert logged["status"] == "delivered" and logged["event"] == "task.succeeded"
    assert logged["message_id"] == deliveries[0].headers["webhook-id"]
    assert [a["status_code"] for a in logged["attempts"]] == [500, 500, 200]
    assert [a["error"] for a in logged["attempts"]] == ["HTTP 500", "HTTP 500", None]
    assert secret not in json.dumps(logged)


async def test_a_rotation_signs_with_both_secrets_until_the_overlap_ends(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    receiver: WebhookReceiver,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    first = await rotate_secret(hub_client, tenant_a)
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "First report.")
    (before,) = await receiver.wait_for(1)
    assert verifies(first, before)

    second = await rotate_secret(hub_client, tenant_a, overlap_seconds=3600)
    assert second != first
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "Second report.")
    during = (await receiver.wait_for(2))[-1]
    assert verifies(first, during) and verifies(second, during)
    assert len(during.headers["webhook-signature"].split(" ")) == 2

    third = await rotate_secret(hub_client, tenant_a, overlap_seconds=0)
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "Third report.")
    after = (await receiver.wait_for(3))[-1]
    assert verifies(third, after)
    assert not verifies(second, after) and not verifies(first, after)
    assert json.loads(after.body)["task"]["result"] == "Third report."


async def test_an_old_secret_signs_x_opshub_signature_until_the_tenant_rotates(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    receiver: WebhookReceiver,
    owner_pool: asyncpg.Pool,
) -> None:
    # A tenant whose secret was made before Standard Webhooks (migration 0013 moved it here).
    old = "whsec_" + "legacy-secret-made-with-token-urlsafe"
    await owner_pool.execute(
        "INSERT INTO webhook_secrets (tenant_id, secret, standard) VALUES ($1, $2, false)",
        tenant_a.id,
        old,
    )
    await store_openai_key(hub_client, tenant_a)
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "Old style.")
    (unchanged,) = await receiver.wait_for(1)
    assert unchanged.headers["x-opshub-signature"] == legacy_signature(old, unchanged.body)
    assert "webhook-signature" not in unchanged.headers

    new = await rotate_secret(hub_client, tenant_a, overlap_seconds=3600)
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "Both styles.")
    moving = (await receiver.wait_for(2))[-1]
    assert moving.headers["x-opshub-signature"] == legacy_signature(old, moving.body)
    assert verifies(new, moving)

    newer = await rotate_secret(hub_client, tenant_a, overlap_seconds=0)
    await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "New style.")
    moved = (await receiver.wait_for(3))[-1]
    assert "x-opshub-signature" not in moved.headers
    assert verifies(newer, moved)


async def test_a_delivery_is_redelivered_on_request_under_the_same_id(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    fake_llm: FakeLLMServer,
    receiver: WebhookReceiver,
    owner_pool: asyncpg.Pool,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    secret = await rotate_secret(hub_client, tenant_a)
    task = await run_task_with_webhook(hub_client, tenant_a, fake_llm, receiver.url, "Again.")
    (first,) = await receiver.wait_for(1)
    [logged] = await delivery_log(hub_client, tenant_a, task["id"], attempts=1)
    path = f"/v1/tasks/{task['id']}/webhooks/{logged['id']}/redeliver"

    async with transaction(owner_pool) as conn:
        _, viewer_key = await tenants_service.create_api_key(
            conn, tenant_id=tenant_a.id, name="dash", role=Role.viewer
        )
    viewer = await hub_client.post(path, headers={"Authorization": f"Bearer {viewer_key}"})
    assert viewer.status_code == 403
    other = await hub_client.post(path, headers=tenant_b.headers)
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    other_log = await hub_client.get(f"/v1/tasks/{task['id']}/webhooks", headers=tenant_b.headers)
    assert other_log.status_code == 404

    response = await hub_client.post(path, headers=tenant_a.headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    second = (await receiver.wait_for(2))[-1]
    assert second.body == first.body
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert verifies(secret, second)
    [relogged] = await delivery_log(hub_client, tenant_a, task["id"], attempts=2)
    assert [a["status_code"] for a in relogged["attempts"]] == [200, 200]

    missing = await hub_client.post(
        f"/v1/tasks/{task['id']}/webhooks/999999999/redeliver", headers=tenant_a.headers
    )
    assert missing.status_code == 404


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
    too_long = await hub_client.post(
        "/v1/webhook-secret", json={"overlap_seconds": 10**9}, headers=tenant_a.headers
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_request"
