"""The chat router never fails a chat, and every one of its model calls is billed.

A reply that is not a decision becomes a question back to the user, also when the tenant's cached
model client has just run a crew (which streams its tokens).
"""

from __future__ import annotations

import uuid

import asyncpg
from httpx import AsyncClient

from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status

COMPLETIONS = "/v1/chat/completions"
NOT_JSON = "Sure! The marketing team could look at that, or maybe analytics."


async def ledger_rows(pool: asyncpg.Pool, task_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM usage_records WHERE task_id = $1", uuid.UUID(task_id)
    )
    return count


async def test_non_json_router_replies_after_a_crew_ran_ask_back_and_are_billed(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    owner_pool: asyncpg.Pool,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    fake_llm.script_openai("Three leads to follow up.", usage=(60, 9))
    crew_run = await hub_client.post(
        "/v1/tasks", json={"crew": "assistant", "input": "Leads?"}, headers=tenant_a.headers
    )
    assert (await wait_for_status(hub_client, tenant_a, crew_run.json()["id"]))["status"] == (
        "succeeded"
    )
    thread = (await hub_client.post("/v1/threads", headers=tenant_a.headers)).json()["id"]

    for message in ("Fix it.", "The thing from before."):
        before = len(fake_llm.requests_for(COMPLETIONS))
        fake_llm.script_openai(NOT_JSON, usage=(120, 14), times=2)
        posted = await hub_client.post(
            f"/v1/threads/{thread}/messages", json={"content": message}, headers=tenant_a.headers
        )
        task = await wait_for_status(hub_client, tenant_a, posted.json()["task"]["id"])

        assert task["status"] == "succeeded", task
        assert task["crew"] is None
        assert "Which of these should take it" in task["result"]
        calls = len(fake_llm.requests_for(COMPLETIONS)) - before
        assert calls == 2  # the reply asked for once more, then the question
        assert task["usage"]["input_tokens"] == 240
        assert task["usage"]["output_tokens"] == 28
        assert await ledger_rows(owner_pool, task["id"]) == calls

    turns = (
        await hub_client.get(f"/v1/threads/{thread}/messages", headers=tenant_a.headers)
    ).json()["items"]
    assert [turn["role"] for turn in turns] == ["user", "agent", "user", "agent"]
