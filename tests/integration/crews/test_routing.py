"""Chat routing: the tenant's model picks the crew or asks back, and a thread's routing
conversation is checkpointed in PostgreSQL, so it survives a worker restart."""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, get_args

import asyncpg
import openai
import pytest
from crewai import LLM
from crewai.hooks import register_before_llm_call_hook, unregister_before_llm_call_hook
from crewai.hooks.dispatch import HookAborted

from opshub.config import Settings
from opshub.crews.registry import CREWS
from opshub.crews.routing import ChatRouter, CrewName
from opshub.db.engine import DatabaseUrls
from opshub.llm.crewai_setup import prepare_crewai
from tests.fakes.llm import FakeLLMServer

KEY = "sk-routing-tenant-key-7f3a9c"
COMPLETIONS = "/v1/chat/completions"


@pytest.fixture(scope="module")
def fake(settings: Settings) -> Iterator[FakeLLMServer]:
    prepare_crewai(settings.data_dir)  # as a worker does
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def llm(fake: FakeLLMServer) -> LLM:
    fake.reset()
    return LLM(
        model="openai/gpt-4o-mini", api_key=KEY, base_url=f"{fake.base_url}/v1", max_retries=0
    )


@pytest.fixture
async def router(urls: DatabaseUrls) -> AsyncIterator[ChatRouter]:
    chat_router = ChatRouter(database_url=urls.owner, crews=CREWS)
    await chat_router.start()
    yield chat_router
    await chat_router.stop()


def reply(crew: str | None, question: str | None = None, reason: str = "because") -> str:
    return json.dumps({"crew": crew, "question": question, "reason": reason})


def sent(fake: FakeLLMServer, index: int = -1) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = fake.requests_for(COMPLETIONS)[index].body["messages"]
    return messages


def conversation(fake: FakeLLMServer, index: int = -1) -> list[tuple[str, str]]:
    """What the model saw besides the system prompt: (role, content) in order."""
    return [(m["role"], m["content"]) for m in sent(fake, index) if m["role"] != "system"]


async def test_a_clear_message_goes_to_the_crew_the_model_names(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    fake.script_openai(text=reply("analytics", reason="a question about ROAS"))

    decision = await router.route(
        tenant_id=uuid.uuid4(),
        thread_id=uuid.uuid4(),
        message="Why did ROAS drop last week on Meta?",
        llm=llm,
    )

    assert (decision.crew, decision.question) == ("analytics", None)
    request = fake.requests_for(COMPLETIONS)[0]
    assert request.api_key == KEY
    assert request.body["response_format"]["type"] == "json_schema"  # structured output
    system = sent(fake)[0]["content"]
    for info in CREWS.values():
        assert f"- {info.name}: {info.description}" in system
    assert conversation(fake) == [("user", "Why did ROAS drop last week on Meta?")]


async def test_an_unclear_message_gets_the_models_clarifying_question(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    fake.script_openai(text=reply(None, "Which channel do you mean: Meta or Google Ads?"))

    decision = await router.route(
        tenant_id=uuid.uuid4(), thread_id=uuid.uuid4(), message="Fix the budget.", llm=llm
    )

    assert decision.crew is None
    assert decision.question == "Which channel do you mean: Meta or Google Ads?"


async def test_the_answer_after_a_restart_is_routed_with_the_earlier_exchange(
    urls: DatabaseUrls, llm: LLM, fake: FakeLLMServer, owner_pool: asyncpg.Pool
) -> None:
    tenant_id, thread_id = uuid.uuid4(), uuid.uuid4()
    question = "Which channel do you mean: Meta or Google Ads?"
    before = ChatRouter(database_url=urls.owner, crews=CREWS)
    await before.start()
    fake.script_openai(text=reply(None, question))
    await before.route(tenant_id=tenant_id, thread_id=thread_id, message="Fix the budget.", llm=llm)
    await before.stop()  # the worker restarts

    after = ChatRouter(database_url=urls.owner, crews=CREWS)
    await after.start()
    try:
        fake.script_openai(text=reply("marketing"))
        decision = await after.route(
            tenant_id=tenant_id, thread_id=thread_id, message="Meta, please.", llm=llm
        )
    finally:
        await after.stop()

    assert decision.crew == "marketing"
    seen = conversation(fake)
    assert [role for role, _ in seen] == ["user", "assistant", "user"]
    assert seen[0] == ("user", "Fix the budget.")
    assert json.loads(seen[1][1])["question"] == question
    assert seen[2] == ("user", "Meta, please.")
    kept = await owner_pool.fetchval(
        "SELECT count(*) FROM routing.checkpoints WHERE thread_id = $1",
        f"{tenant_id}:{thread_id}",
    )
    assert kept == 1  # older checkpoints of the thread are pruned


async def test_two_tenants_threads_never_see_each_others_history(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    thread_id = uuid.uuid4()  # the same thread id under two tenants, the worst case
    acme, bakery = uuid.uuid4(), uuid.uuid4()
    fake.script_openai(text=reply(None, "Which Acme campaign?"), times=2)
    await router.route(tenant_id=acme, thread_id=thread_id, message="Acme tents", llm=llm)
    await router.route(tenant_id=bakery, thread_id=thread_id, message="Bakery bread", llm=llm)
    fake.script_openai(text=reply("marketing"))
    await router.route(tenant_id=acme, thread_id=thread_id, message="The spring one", llm=llm)

    assert conversation(fake, 1) == [("user", "Bakery bread")]
    acme_later = " ".join(content for _, content in conversation(fake, 2))
    assert "Acme tents" in acme_later
    assert "Bakery" not in acme_later


async def test_an_invalid_reply_is_asked_for_once_more(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    fake.script_openai(text="Sure! The marketing crew, I think.")
    fake.script_openai(text=reply("ecommerce"))

    decision = await router.route(
        tenant_id=uuid.uuid4(), thread_id=uuid.uuid4(), message="List the sneakers.", llm=llm
    )

    assert decision.crew == "ecommerce"
    retry = conversation(fake, 1)[-1]
    assert retry[0] == "user"
    assert "not usable" in retry[1]


async def test_two_invalid_replies_fall_back_to_a_clarifying_question(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    fake.script_openai(text="not json at all")
    fake.script_openai(text=reply("legal"))  # a crew that does not exist

    decision = await router.route(
        tenant_id=uuid.uuid4(), thread_id=uuid.uuid4(), message="Do the thing.", llm=llm
    )

    assert decision.crew is None
    assert decision.question is not None
    for name in ("marketing", "analytics", "ecommerce", "operations"):
        assert name in decision.question
    assert len(fake.requests_for(COMPLETIONS)) == 2


async def test_a_failing_model_call_is_raised_not_turned_into_a_question(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    fake.script_error("openai", 401)

    with pytest.raises(openai.AuthenticationError):
        await router.route(tenant_id=uuid.uuid4(), thread_id=uuid.uuid4(), message="Hello", llm=llm)
    assert len(fake.requests_for(COMPLETIONS)) == 1


current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar("task", default=None)


async def test_the_workers_hooks_see_the_run_and_can_stop_it(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    """The worker meters and cancels a run through CrewAI's hooks and a context variable."""
    seen: list[str | None] = []

    def hook(_context: Any) -> None:
        seen.append(current_task.get())
        if current_task.get() == "cancelled":
            raise HookAborted("the task was cancelled", source="test")

    register_before_llm_call_hook(hook)
    try:
        fake.script_openai(text=reply("marketing"))
        token = current_task.set("running")
        await router.route(tenant_id=uuid.uuid4(), thread_id=uuid.uuid4(), message="Ads", llm=llm)
        current_task.reset(token)
        token = current_task.set("cancelled")
        with pytest.raises(HookAborted):
            await router.route(
                tenant_id=uuid.uuid4(), thread_id=uuid.uuid4(), message="Ads", llm=llm
            )
        current_task.reset(token)
    finally:
        unregister_before_llm_call_hook(hook)

    assert seen == ["running", "cancelled"]
    assert len(fake.requests_for(COMPLETIONS)) == 1  # the cancelled one never went out


async def test_the_checkpoints_hold_no_key(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer, owner_pool: asyncpg.Pool
) -> None:
    tenant_id, thread_id = uuid.uuid4(), uuid.uuid4()
    fake.script_openai(text=reply(None, "Which report?"))
    fake.script_openai(text=reply("analytics"))
    await router.route(tenant_id=tenant_id, thread_id=thread_id, message="Report", llm=llm)
    await router.route(tenant_id=tenant_id, thread_id=thread_id, message="Weekly", llm=llm)

    counts = await owner_pool.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM routing.checkpoints WHERE thread_id = $1) AS ours,
          (SELECT count(*) FROM routing.checkpoints
            WHERE strpos(checkpoint::text || metadata::text, $2) > 0)
          + (SELECT count(*) FROM routing.checkpoint_blobs
            WHERE position(convert_to($2, 'UTF8') IN coalesce(blob, '')) > 0)
          + (SELECT count(*) FROM routing.checkpoint_writes
            WHERE position(convert_to($2, 'UTF8') IN blob) > 0) AS with_key
        """,
        f"{tenant_id}:{thread_id}",
        KEY,
    )
    assert counts["ours"] == 1
    assert counts["with_key"] == 0


async def test_a_task_outside_a_thread_leaves_no_routing_state(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer, owner_pool: asyncpg.Pool
) -> None:
    tenant_id = uuid.uuid4()
    fake.script_openai(text=reply("operations"))

    decision = await router.route(
        tenant_id=tenant_id, thread_id=None, message="Check the order backlog.", llm=llm
    )

    assert decision.crew == "operations"
    rows = await owner_pool.fetchval(
        "SELECT count(*) FROM routing.checkpoints WHERE thread_id LIKE $1", f"{tenant_id}:%"
    )
    assert rows == 0


def test_the_router_can_name_every_crew_of_the_registry() -> None:
    assert set(get_args(CrewName)) == set(CREWS)


async def test_a_forgotten_thread_starts_afresh(
    router: ChatRouter, llm: LLM, fake: FakeLLMServer
) -> None:
    tenant_id, thread_id = uuid.uuid4(), uuid.uuid4()
    fake.script_openai(text=reply(None, "Which shop?"))
    await router.route(tenant_id=tenant_id, thread_id=thread_id, message="Prices", llm=llm)

    await router.forget(tenant_id=tenant_id, thread_id=thread_id)
    fake.script_openai(text=reply("ecommerce"))
    await router.route(tenant_id=tenant_id, thread_id=thread_id, message="The EU one", llm=llm)

    assert conversation(fake) == [("user", "The EU one")]
