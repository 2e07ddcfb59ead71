"""Threads (API.md "Threads") with the in-process worker and the fake model.

A message becomes a task of the thread; its answer is the agent's turn. The next message's model
request carries the conversation so far, and only this thread's. Another tenant's thread is 404.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from httpx import AsyncClient

from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status


async def new_thread(client: AsyncClient, tenant: TenantHandle) -> str:
    response = await client.post("/v1/threads", json={"title": "Weekly"}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    thread_id: str = response.json()["id"]
    uuid.UUID(thread_id)
    return thread_id


async def ask(
    client: AsyncClient, tenant: TenantHandle, thread_id: str, content: str
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/threads/{thread_id}/messages",
        json={"content": content, "crew": "assistant"},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    posted: dict[str, Any] = response.json()
    return posted


async def messages(client: AsyncClient, tenant: TenantHandle, thread_id: str) -> list[Any]:
    response = await client.get(f"/v1/threads/{thread_id}/messages", headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def model_request_text(fake_llm: FakeLLMServer, marker: str) -> str:
    """All message text of the last chat completion whose prompt contains ``marker``."""
    for request in reversed(fake_llm.requests_for("/v1/chat/completions")):
        text = json.dumps(request.body["messages"])
        if marker in text:
            return text
    raise AssertionError(f"no model request mentioned {marker!r}")


async def test_a_message_is_answered_as_the_agents_turn_of_the_thread(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_a)
    thread_id = await new_thread(hub_client, tenant_a)
    fake_llm.script_openai("Leads are up 12% this week.", usage=(40, 8))

    posted = await ask(hub_client, tenant_a, thread_id, "How are leads this week?")

    message, task = posted["message"], posted["task"]
    assert message["role"] == "user"
    assert message["content"] == "How are leads this week?"
    assert message["task_id"] == task["id"]
    assert task["status"] == "queued"
    assert task["thread_id"] == thread_id
    assert task["input"] == "How are leads this week?"

    finished = await wait_for_status(hub_client, tenant_a, task["id"])
    assert finished["status"] == "succeeded", finished
    assert finished["result"] == "Leads are up 12% this week."

    turns = await messages(hub_client, tenant_a, thread_id)
    assert [(turn["role"], turn["content"], turn["task_id"]) for turn in turns] == [
        ("user", "How are leads this week?", task["id"]),
        ("agent", "Leads are up 12% this week.", task["id"]),
    ]
    listed = await hub_client.get(
        "/v1/tasks", params={"thread_id": thread_id}, headers=tenant_a.headers
    )
    assert [item["id"] for item in listed.json()["items"]] == [task["id"]]


async def test_the_next_message_sees_this_conversation_and_no_other_thread(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_a)
    ours = await new_thread(hub_client, tenant_a)
    other = await new_thread(hub_client, tenant_a)
    tag = uuid.uuid4().hex[:8]

    fake_llm.script_openai(f"Spend was 4200 EUR ({tag}-first-answer).")
    first = await ask(hub_client, tenant_a, ours, f"What did we spend? {tag}-first-question")
    assert (await wait_for_status(hub_client, tenant_a, first["task"]["id"]))[
        "status"
    ] == "succeeded"

    fake_llm.script_openai(f"The bakery secret is {tag}-other-answer.")
    aside = await ask(hub_client, tenant_a, other, f"Unrelated: {tag}-other-question")
    assert (await wait_for_status(hub_client, tenant_a, aside["task"]["id"]))[
        "status"
    ] == "succeeded"

    fake_llm.script_openai("Half of it went to search ads.")
    second = await ask(hub_client, tenant_a, ours, f"And by channel? {tag}-second-question")
    done = await wait_for_status(hub_client, tenant_a, second["task"]["id"])
    assert done["status"] == "succeeded", done

    prompt = model_request_text(fake_llm, f"{tag}-second-question")
    assert f"{tag}-first-question" in prompt
    assert f"{tag}-first-answer" in prompt
    assert prompt.index(f"{tag}-first-question") < prompt.index(f"{tag}-first-answer")
    assert f"{tag}-other-question" not in prompt
    assert f"{tag}-other-answer" not in prompt
    # And the first turn of a thread starts with no history at all.
    opening = model_request_text(fake_llm, f"{tag}-other-question")
    assert f"{tag}-first" not in opening

    turns = await messages(hub_client, tenant_a, ours)
    assert [turn["role"] for turn in turns] == ["user", "agent", "user", "agent"]
    assert turns[-1]["content"] == "Half of it went to search ads."


async def test_another_tenants_thread_is_not_found(
    hub_client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    thread_id = await new_thread(hub_client, tenant_a)

    for method, path, body in [
        ("GET", f"/v1/threads/{thread_id}", None),
        ("GET", f"/v1/threads/{thread_id}/messages", None),
        ("POST", f"/v1/threads/{thread_id}/messages", {"content": "let me in"}),
    ]:
        response = await hub_client.request(method, path, json=body, headers=tenant_b.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"

    sneaky = await hub_client.post(
        "/v1/tasks", json={"input": "x", "thread_id": thread_id}, headers=tenant_b.headers
    )
    assert sneaky.status_code == 404, sneaky.text
    assert await messages(hub_client, tenant_a, thread_id) == []


async def test_an_empty_message_is_an_invalid_request(
    hub_client: AsyncClient, tenant_a: TenantHandle
) -> None:
    thread_id = await new_thread(hub_client, tenant_a)
    response = await hub_client.post(
        f"/v1/threads/{thread_id}/messages", json={"content": ""}, headers=tenant_a.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
