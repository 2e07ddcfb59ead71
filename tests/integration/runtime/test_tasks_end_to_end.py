"""A task from submission to answer through the API, a real worker and the fake model."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from itertools import pairwise

import asyncpg
from httpx import AsyncClient

from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status


async def test_a_task_runs_to_its_answer_with_the_tenants_key(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})], usage=(50, 10))
    fake_llm.script_openai("Acme has no clients yet.", usage=(80, 12))

    response = await hub_client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "How many clients do we have?"},
        headers=tenant_a.headers,
    )
    assert response.status_code == 202, response.text
    submitted = response.json()
    assert submitted["status"] == "queued"

    task = await wait_for_status(hub_client, tenant_a, submitted["id"])
    assert task["status"] == "succeeded", task
    assert task["result"] == "Acme has no clients yet."
    assert task["usage"]["input_tokens"] == 130
    assert task["usage"]["billed_to"] == "byok"
    assert task["attempt"] == 1
    calls = fake_llm.requests_for("/v1/chat/completions")
    assert calls and all(call.api_key == key for call in calls[-2:])

    events = await hub_client.get(f"/v1/tasks/{submitted['id']}/events", headers=tenant_a.headers)
    assert events.status_code == 200
    types = [
        line.split(": ", 1)[1] for line in events.text.splitlines() if line.startswith("event: ")
    ]
    assert types[0] == "task.started"
    assert types[-1] == "task.succeeded"
    assert "tool.call" in types and "tool.result" in types and "llm.call" in types


async def test_a_key_the_provider_refuses_is_called_once_and_the_task_fails(
    hub_client: AsyncClient, tenant_b: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_b)
    marker = f"refused-{uuid.uuid4().hex[:8]}"
    fake_llm.script_error("openai", 401, times=3)
    try:
        response = await hub_client.post(
            "/v1/tasks",
            json={"crew": "assistant", "input": f"Summarise {marker}"},
            headers=tenant_b.headers,
        )
        assert response.status_code == 202, response.text

        task = await wait_for_status(hub_client, tenant_b, response.json()["id"])
        calls = [
            call
            for call in fake_llm.requests_for("/v1/chat/completions")
            if marker in json.dumps(call.body)
        ]
    finally:
        fake_llm.reset()  # the 401s it was never asked for again
    assert task["status"] == "failed", task
    assert task["error"]["code"] == "credential_invalid"
    assert len(calls) == 1


async def test_a_forged_or_malformed_cancel_notification_leaves_a_run_alone(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    app_pool: asyncpg.Pool,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    marker = f"forged-{uuid.uuid4().hex[:8]}"
    fake_llm.script_openai("Finished despite the forged cancel.", latency=2.0)
    response = await hub_client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": f"Summarise {marker}"},
        headers=tenant_a.headers,
    )
    task_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while not any(
        marker in json.dumps(c.body) for c in fake_llm.requests_for("/v1/chat/completions")
    ):
        assert time.monotonic() < deadline, "the model call never started"
        await asyncio.sleep(0.05)

    # Anything holding the app role can NOTIFY; only the task's row says whether it is cancelled.
    async with app_pool.acquire() as conn:
        await conn.execute("SELECT pg_notify('opshub_task_cancel', $1)", task_id)
        await conn.execute("SELECT pg_notify('opshub_task_cancel', 'not a task id')")

    task = await wait_for_status(hub_client, tenant_a, task_id)
    assert task["status"] == "succeeded", task
    assert task["result"] == "Finished despite the forged cancel."


async def test_a_run_the_provider_could_not_answer_is_tried_again_and_then_succeeds(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_a)
    fake_llm.script_error("openai", 503)  # the runtime's client makes no retries of its own
    fake_llm.script_openai("Answered on the second attempt.")

    response = await hub_client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "Summarise the week."},
        headers=tenant_a.headers,
    )
    assert response.status_code == 202, response.text
    task = await wait_for_status(hub_client, tenant_a, response.json()["id"])

    assert task["status"] == "succeeded", task
    assert task["result"] == "Answered on the second attempt."
    assert task["attempt"] == 2
    assert task["error"] is None
    stream = await hub_client.get(f"/v1/tasks/{task['id']}/events", headers=tenant_a.headers)
    lines = stream.text.splitlines()
    events = [
        (line[7:], json.loads(data[6:]))
        for line, data in pairwise(lines)
        if line.startswith("event: ") and data.startswith("data: ")
    ]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "task.started" and kinds[-1] == "task.succeeded"
    started = [i for i, kind in enumerate(kinds) if kind == "task.started"]
    retrying = [i for i, kind in enumerate(kinds) if kind == "task.retrying"]
    assert len(started) == 2 and len(retrying) == 1, kinds
    assert started[0] < retrying[0] < started[1], kinds  # the first attempt ended retrying
    assert events[retrying[0]][1]["error"]["code"] == "provider_unavailable", events
