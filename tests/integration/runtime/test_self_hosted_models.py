"""A tenant's own OpenAI-compatible server (vLLM, Ollama, a GPU box): its model name is the one
every call sends, and moving the key to another server moves the next run with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from httpx import AsyncClient

from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import wait_for_status

COMPLETIONS = "/v1/chat/completions"
KEY = "sk-self-hosted-7d1e40b2"
MODEL = "llama-3.1-8b-instruct"


@pytest.fixture
def gpu_boxes() -> Iterator[tuple[FakeLLMServer, FakeLLMServer]]:
    with (
        FakeLLMServer(default_text="Answered by box one.") as one,
        FakeLLMServer(default_text="Answered by box two.") as two,
    ):
        for box in (one, two):
            box.openai_models = [MODEL]
        yield one, two


async def store_server(client: AsyncClient, tenant: TenantHandle, box: FakeLLMServer) -> None:
    secret = {"base_url": f"{box.base_url}/v1", "api_key": KEY, "model": MODEL}
    response = await client.put(
        "/v1/credentials/openai_compatible", json={"secret": secret}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "healthy"


async def run(client: AsyncClient, tenant: TenantHandle, message: str) -> dict[str, object]:
    response = await client.post(
        "/v1/tasks", json={"crew": "assistant", "input": message}, headers=tenant.headers
    )
    assert response.status_code == 202, response.text
    return await wait_for_status(client, tenant, response.json()["id"])


async def test_a_run_calls_the_tenants_server_with_its_own_model_name(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    gpu_boxes: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    one, _ = gpu_boxes
    await store_server(hub_client, tenant_a, one)

    task = await run(hub_client, tenant_a, "Which leads came in this week?")

    assert task["status"] == "succeeded", task
    assert task["result"] == "Answered by box one."
    calls = one.requests_for(COMPLETIONS)
    assert calls
    assert {call.body["model"] for call in calls} == {MODEL}
    assert {call.api_key for call in calls} == {KEY}


async def test_moving_the_key_to_another_server_redirects_the_next_run(
    hub_client: AsyncClient,
    tenant_b: TenantHandle,
    gpu_boxes: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    one, two = gpu_boxes
    await store_server(hub_client, tenant_b, one)
    first = await run(hub_client, tenant_b, "Summarise the open orders.")
    assert first["result"] == "Answered by box one."
    calls_on_one = len(one.requests_for(COMPLETIONS))

    await store_server(hub_client, tenant_b, two)  # the same key, another server
    second = await run(hub_client, tenant_b, "Summarise the open orders again.")

    assert second["status"] == "succeeded", second
    assert second["result"] == "Answered by box two."
    assert len(one.requests_for(COMPLETIONS)) == calls_on_one
    assert {call.body["model"] for call in two.requests_for(COMPLETIONS)} == {MODEL}


async def test_a_key_the_server_refuses_is_stored_as_invalid_with_the_servers_reason(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    gpu_boxes: tuple[FakeLLMServer, FakeLLMServer],
) -> None:
    one, _ = gpu_boxes
    one.valid_keys = {"sk-the-key-the-box-knows"}
    secret = {"base_url": f"{one.base_url}/v1", "api_key": KEY, "model": MODEL}

    response = await hub_client.put(
        "/v1/credentials/openai_compatible", json={"secret": secret}, headers=tenant_a.headers
    )

    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["status"] == "invalid"
    assert stored["status_detail"] == (
        "the provider refused the credential (401): Incorrect API key provided: sk-***40b2."
    )
    assert KEY not in response.text
