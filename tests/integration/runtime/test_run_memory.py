"""Memory around a crew run, with the in-process worker and the fake model.

After a run the outcome is kept (kind ``outcome``, the crew's scope, or the thread's for a chat
turn) and, when the tenant has extraction on, one more model call picks durable facts that become
tenant memories. That happens after the task has ended: the answer never waits for it. Before the
next run the relevant memories are in the crew's prompt ("What you remember about this business"),
and never another tenant's.
Extraction off (this suite's platform default) means no extra model call; a reply that is not
the JSON asked for, or a failed extraction call, still lets the task succeed.

The fake's scripted replies are shared by every tenant and consumed in order: each test scripts
exactly the calls its runs make and checks that none is left over. A tenant's model requests are
told apart by its own API key.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import numpy as np
import orjson
import pytest
from httpx import AsyncClient

from opshub.config import get_settings
from opshub.memory.embedders import LocalEmbedder
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer, RecordedRequest
from tests.integration.runtime.conftest import (
    memories_written,
    store_openai_key,
    wait_for_status,
)

CHAT = "/v1/chat/completions"
RECALL_HEADING = "What you remember about this business"
EXTRACTION_MARKER = "You keep the long-term memory"
FACT = "Acme's preferred ad channel is LinkedIn."
# The first run of a session loads CrewAI and the embedding model; a busy machine needs longer.
RUN_WITHIN = 90.0


@pytest.fixture(autouse=True)
def nothing_left_scripted(fake_llm: FakeLLMServer) -> Iterator[None]:
    """Every test starts and ends with an empty queue: a reply left over would answer the next
    test's call (or a call this test did not expect to make)."""
    assert fake_llm.pending("openai") == 0, "a previous test left scripted replies"
    yield
    left = fake_llm.pending("openai")
    if left:
        fake_llm.reset()  # so that one test's failure does not become the next one's
    assert left == 0, f"{left} scripted replies were never asked for"


async def set_extraction(client: AsyncClient, tenant: TenantHandle, enabled: bool) -> None:
    response = await client.patch(
        "/v1/memories/settings", json={"extraction": enabled}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["extraction"] is enabled


async def run_task(
    client: AsyncClient, pool: asyncpg.Pool, tenant: TenantHandle, text: str
) -> dict[str, Any]:
    """Run a task and wait for its memories too; the task as it reads once they are written."""
    response = await client.post(
        "/v1/tasks", json={"crew": "assistant", "input": text}, headers=tenant.headers
    )
    assert response.status_code == 202, response.text
    task = await wait_for_status(client, tenant, response.json()["id"], within=RUN_WITHIN)
    assert task["status"] == "succeeded", task
    await memories_written(pool, task["id"])
    return await wait_for_status(client, tenant, task["id"])


async def ask_in_thread(
    client: AsyncClient, pool: asyncpg.Pool, tenant: TenantHandle, thread_id: str, text: str
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/threads/{thread_id}/messages",
        json={"content": text, "crew": "assistant"},
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    task = await wait_for_status(client, tenant, response.json()["task"]["id"], within=RUN_WITHIN)
    assert task["status"] == "succeeded", task
    await memories_written(pool, task["id"])
    return task


async def new_thread(client: AsyncClient, tenant: TenantHandle) -> str:
    response = await client.post("/v1/threads", json={"title": "Chat"}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    thread_id: str = response.json()["id"]
    return thread_id


def calls_with(fake_llm: FakeLLMServer, key: str) -> list[RecordedRequest]:
    """The chat completions made with one tenant's key, in order."""
    return [r for r in fake_llm.requests_for(CHAT) if r.api_key == key]


def prompt(request: RecordedRequest) -> str:
    """Every message of a request as one text (JSON-decoded, so quotes read as written)."""
    return "\n".join(
        str(m.get("content")) if isinstance(m.get("content"), str) else json.dumps(m["content"])
        for m in request.body["messages"]
    )


def is_extraction(request: RecordedRequest) -> bool:
    return EXTRACTION_MARKER in prompt(request)


async def events_of(client: AsyncClient, tenant: TenantHandle, task_id: str) -> list[Any]:
    """The finished task's replayed events (the stream ends with the task's final event)."""
    response = await client.get(f"/v1/tasks/{task_id}/events", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [
        orjson.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


async def memories(client: AsyncClient, tenant: TenantHandle, **params: Any) -> list[Any]:
    response = await client.get(
        "/v1/memories", params={"limit": 100, **params}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def extraction_reply(*facts: dict[str, Any]) -> str:
    return json.dumps({"facts": list(facts)})


async def test_extracted_facts_are_kept_and_recalled_in_the_next_run(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    await set_extraction(hub_client, tenant_a, True)
    tag = uuid.uuid4().hex[:8]

    first_request = f"Plan Acme's spring campaign; they told us LinkedIn works best. ({tag})"
    fake_llm.script_openai("Run it on LinkedIn, three posts a week.", usage=(60, 10))
    fake_llm.script_openai(
        "```json\n"
        + extraction_reply(
            {"content": FACT, "kind": "preference", "subject": "acme.channel", "importance": 0.8}
        )
        + "\n```",
        usage=(120, 30),
    )
    first = await run_task(hub_client, owner_pool, tenant_a, first_request)
    assert first["result"] == "Run it on LinkedIn, three posts a week."

    # One crew call, then the one extraction call on the request and the answer.
    made = calls_with(fake_llm, key)
    assert [is_extraction(r) for r in made] == [False, True]
    assert first_request in prompt(made[1])
    assert "Run it on LinkedIn, three posts a week." in prompt(made[1])
    # Metered with the run: the task's usage counts the extraction call once it is written.
    assert first["usage"]["input_tokens"] == 180

    # The fact is a tenant memory anyone with a key can find by meaning.
    hits = await memories(hub_client, tenant_a, query="Where should Acme's ads run?")
    # (The run's outcome, which also speaks of LinkedIn, may rank beside it.)
    assert FACT in [hit["content"] for hit in hits[:2]], hits
    [fact] = [hit for hit in hits if hit["content"] == FACT]
    assert (fact["scope"], fact["kind"], fact["subject"]) == (
        "tenant",
        "preference",
        "acme.channel",
    )
    assert fact["importance"] == 0.8
    assert fact["metadata"]["task_id"] == first["id"]
    [outcome] = await memories(hub_client, tenant_a, kind="outcome")
    assert outcome["scope"] == "crew:assistant"
    assert outcome["metadata"]["task_id"] == first["id"]

    # The next run's first model request carries the fact.
    second_request = f"Which channel should Acme's autumn campaign use? ({tag}-second)"
    fake_llm.script_openai("LinkedIn again.")
    fake_llm.script_openai(extraction_reply())
    second = await run_task(hub_client, owner_pool, tenant_a, second_request)
    assert second["result"] == "LinkedIn again."
    made = calls_with(fake_llm, key)[2:]
    assert [is_extraction(r) for r in made] == [False, True]
    text = prompt(made[0])
    assert second_request in text
    assert RECALL_HEADING in text
    assert f"- (preference) {FACT}" in text
    assert text.index(RECALL_HEADING) < text.index(FACT) < text.index(second_request)
    # An empty list of facts stores only the second run's outcome.
    assert len(await memories(hub_client, tenant_a)) == 3


async def test_the_answer_does_not_wait_for_the_extraction_call(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    """The extraction is a whole model call (seconds with a real provider): the task ends (its
    status, result, thread turn and final event) while that call is still being answered."""
    key = await store_openai_key(hub_client, tenant_a)
    await set_extraction(hub_client, tenant_a, True)
    fake_llm.script_openai("Acme should stay on LinkedIn.", usage=(50, 10))
    fake_llm.script_openai(
        extraction_reply({"content": FACT, "kind": "preference", "subject": "acme.channel"}),
        usage=(100, 20),
        latency=3.0,
    )
    response = await hub_client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "Where should Acme advertise?"},
        headers=tenant_a.headers,
    )
    task = await wait_for_status(hub_client, tenant_a, response.json()["id"], within=RUN_WITHIN)
    assert (task["status"], task["result"]) == ("succeeded", "Acme should stay on LinkedIn.")
    assert task["usage"]["input_tokens"] == 50
    assert (await events_of(hub_client, tenant_a, task["id"]))[-1]["type"] == "task.succeeded"

    # The extraction call is asked after the task ended, and nothing is remembered before it
    # is answered.
    deadline = time.monotonic() + 10
    while not is_extraction(calls_with(fake_llm, key)[-1]):
        assert time.monotonic() < deadline, "the extraction call was never made"
        await asyncio.sleep(0.05)
    assert await memories(hub_client, tenant_a) == []

    await memories_written(owner_pool, task["id"])
    kept = await memories(hub_client, tenant_a)
    assert sorted(m["kind"] for m in kept) == ["outcome", "preference"]
    after = await wait_for_status(hub_client, tenant_a, task["id"])
    assert after["usage"]["input_tokens"] == 150


async def test_another_tenants_run_never_sees_my_memories(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    key_a = await store_openai_key(hub_client, tenant_a)
    key_b = await store_openai_key(hub_client, tenant_b)
    stored = await hub_client.post(
        "/v1/memories",
        json={"content": FACT, "kind": "preference", "subject": "acme.channel"},
        headers=tenant_a.headers,
    )
    assert stored.status_code == 201, stored.text
    question = "Which ad channel does Acme prefer for its campaigns?"

    # Tenant A's own run is told (so the same question would surface it) …
    fake_llm.script_openai("LinkedIn.")
    await run_task(hub_client, owner_pool, tenant_a, question)
    [mine] = calls_with(fake_llm, key_a)
    assert FACT in prompt(mine)

    # … tenant B's run of the very same request is not, nor is A's outcome of it.
    fake_llm.script_openai("We have no record of Acme's channel.")
    answered = await run_task(hub_client, owner_pool, tenant_b, question)
    assert answered["result"] == "We have no record of Acme's channel."
    [theirs] = calls_with(fake_llm, key_b)
    text = prompt(theirs)
    assert question in text
    assert "LinkedIn" not in text
    assert RECALL_HEADING not in text
    # B keeps its own outcome, and only that.
    [outcome] = await memories(hub_client, tenant_b)
    assert "LinkedIn" not in outcome["content"]
    assert outcome["metadata"]["task_id"] == answered["id"]


async def test_without_extraction_only_the_crews_calls_are_made_and_the_outcome_is_kept(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    settings = await hub_client.get("/v1/memories/settings", headers=tenant_a.headers)
    assert settings.json()["extraction"] is False  # this suite's platform default

    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})])
    fake_llm.script_openai("You have no clients yet.")
    task = await run_task(hub_client, owner_pool, tenant_a, "How many clients do we have?")
    assert task["result"] == "You have no clients yet."

    made = calls_with(fake_llm, key)
    assert len(made) == 2
    assert not any(is_extraction(r) for r in made)

    [outcome] = await memories(hub_client, tenant_a)
    assert outcome["kind"] == "outcome"
    assert outcome["scope"] == "crew:assistant"
    assert outcome["content"] == (
        "Request: How many clients do we have?\nOutcome: You have no clients yet."
    )
    assert outcome["metadata"] == {"task_id": task["id"]}
    # Found by the request that led to it: the vector the recall computed before the run.
    stored = await owner_pool.fetchval(
        "SELECT embedding::text FROM memories WHERE id = $1", uuid.UUID(outcome["id"])
    )
    [by_request] = await LocalEmbedder(cache_dir=get_settings().model_cache_dir).embed(
        ["How many clients do we have?"]
    )
    np.testing.assert_allclose(orjson.loads(stored), by_request, atol=1e-6)


async def test_a_tenant_that_switches_extraction_off_gets_no_extra_call(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    await set_extraction(hub_client, tenant_a, True)
    await set_extraction(hub_client, tenant_a, False)

    fake_llm.script_openai("Done.")
    await run_task(hub_client, owner_pool, tenant_a, "Summarise this week's leads.")
    assert len(calls_with(fake_llm, key)) == 1
    assert [m["kind"] for m in await memories(hub_client, tenant_a)] == ["outcome"]


async def test_a_chat_turns_outcome_stays_with_its_thread(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    ours, other = await new_thread(hub_client, tenant_a), await new_thread(hub_client, tenant_a)
    tag = uuid.uuid4().hex[:8]

    fake_llm.script_openai(f"The Easter promotion code is HOP{tag}.")
    turn = await ask_in_thread(
        hub_client, owner_pool, tenant_a, ours, "What promotion code are we using for Easter?"
    )
    [outcome] = await memories(hub_client, tenant_a)
    assert outcome["scope"] == f"thread:{ours}"
    assert outcome["kind"] == "outcome"
    assert outcome["metadata"]["task_id"] == turn["id"]

    # Another conversation asking the same is not told this one's words.
    fake_llm.script_openai("I don't know the Easter code.")
    await ask_in_thread(
        hub_client, owner_pool, tenant_a, other, "What promotion code are we using for Easter?"
    )
    text = prompt(calls_with(fake_llm, key)[-1])
    assert f"HOP{tag}" not in text
    # The same conversation is (the outcome is recalled as a memory, besides the history).
    fake_llm.script_openai("As I said.")
    await ask_in_thread(
        hub_client, owner_pool, tenant_a, ours, "Remind me: which promotion code for Easter?"
    )
    text = prompt(calls_with(fake_llm, key)[-1])
    assert RECALL_HEADING in text
    assert "- (outcome) Request: What promotion code are we using for Easter?" in text


GARBAGE_REPLIES = [
    pytest.param("I could not find anything worth remembering, sorry!", id="prose"),
    pytest.param('{"facts": [{"content": "Acme likes', id="truncated-json"),
    pytest.param('{"facts": "LinkedIn"}', id="facts-not-a-list"),
    pytest.param('["Acme likes LinkedIn"]', id="a-list-not-an-object"),
    pytest.param(
        '{"facts": [{"kind": "fact"}, {"content": "", "kind": "fact"}, '
        '{"content": "Acme likes LinkedIn.", "kind": "rumour"}, '
        '{"content": "Acme likes LinkedIn.", "importance": 7}]}',
        id="every-fact-invalid",
    ),
]


@pytest.mark.parametrize("reply", GARBAGE_REPLIES)
async def test_an_extraction_reply_that_is_not_the_json_asked_for_keeps_only_the_outcome(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    reply: str,
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    await set_extraction(hub_client, tenant_a, True)

    fake_llm.script_openai("Acme should stay on LinkedIn.")
    fake_llm.script_openai(reply)
    task = await run_task(hub_client, owner_pool, tenant_a, "Where should Acme advertise?")
    assert task["result"] == "Acme should stay on LinkedIn."

    assert [is_extraction(r) for r in calls_with(fake_llm, key)] == [False, True]
    [outcome] = await memories(hub_client, tenant_a)
    assert outcome["kind"] == "outcome"
    assert outcome["content"].endswith("Outcome: Acme should stay on LinkedIn.")


async def test_some_good_facts_among_bad_ones_are_kept(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    await set_extraction(hub_client, tenant_a, True)

    fake_llm.script_openai("Noted.")
    fake_llm.script_openai(
        "Here you go: "
        + extraction_reply(
            {"content": "Globex's fiscal year starts in April.", "subject": "globex.fiscal_year"},
            {"kind": "fact"},
            {"content": "Globex pays by bank transfer.", "kind": "nonsense"},
        )
        + " Hope that helps."
    )
    await run_task(hub_client, owner_pool, tenant_a, "Note Globex's fiscal year and how they pay.")

    kept = await memories(hub_client, tenant_a, scope="tenant")
    assert [(m["content"], m["kind"], m["subject"]) for m in kept] == [
        ("Globex's fiscal year starts in April.", "fact", "globex.fiscal_year")
    ]


async def test_a_failed_extraction_call_does_not_fail_the_task(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    key = await store_openai_key(hub_client, tenant_a)
    await set_extraction(hub_client, tenant_a, True)

    fake_llm.script_openai("Acme should stay on LinkedIn.")
    fake_llm.script_error("openai", 500)
    task = await run_task(hub_client, owner_pool, tenant_a, "Where should Acme advertise?")
    assert task["result"] == "Acme should stay on LinkedIn."
    assert task["attempt"] == 1
    assert is_extraction(calls_with(fake_llm, key)[-1])


async def test_a_failed_extraction_call_still_keeps_the_outcome(
    hub_client: AsyncClient,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    await set_extraction(hub_client, tenant_a, True)

    fake_llm.script_openai("Acme should stay on LinkedIn.")
    fake_llm.script_error("openai", 500)
    task = await run_task(hub_client, owner_pool, tenant_a, "Where should Acme advertise?")

    # The outcome needs no model: losing the optional extraction must not lose it too.
    [outcome] = await memories(hub_client, tenant_a)
    assert outcome["kind"] == "outcome"
    assert outcome["metadata"]["task_id"] == task["id"]
