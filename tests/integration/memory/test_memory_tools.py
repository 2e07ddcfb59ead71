"""The agents' memory tools, called as CrewAI calls them: from a thread, bound to one tenant."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson

from opshub.memory.models import TENANT_SCOPE
from opshub.memory.schemas import MemoryCreate
from opshub.memory.service import MemoryFilter
from opshub.tools.context import ToolContext
from opshub.tools.memory import SaveMemoryTool, SearchMemoryTool
from tests.conftest import TenantHandle


def tools_for(memory, app_pool: asyncpg.Pool) -> tuple[SearchMemoryTool, SaveMemoryTool]:  # type: ignore[no-untyped-def]
    context = ToolContext(
        tenant_id=memory.tenant_id, app_pool=app_pool, loop=asyncio.get_running_loop()
    )
    search = SearchMemoryTool(
        context=context, memory=memory, scopes_filter=MemoryFilter(scopes=[TENANT_SCOPE])
    )
    return search, SaveMemoryTool(context=context, memory=memory)


async def test_what_an_agent_saves_it_finds_again_and_another_tenant_does_not(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle, tenant_b: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    search_a, save_a = tools_for(memory_of(tenant_a), app_pool)
    search_b, _ = tools_for(memory_of(tenant_b), app_pool)

    saved = await asyncio.to_thread(
        save_a.run,
        content="Acme's newsletter goes out on Thursdays at 8am.",
        kind="fact",
        subject="acme.newsletter_day",
    )
    found = await asyncio.to_thread(search_a.run, query="When is Acme's newsletter sent?")
    theirs = await asyncio.to_thread(search_b.run, query="When is Acme's newsletter sent?")

    assert saved == "Remembered (created)."
    assert orjson.loads(found)[0] == {
        "content": "Acme's newsletter goes out on Thursdays at 8am.",
        "kind": "fact",
        "scope": "tenant",
    }
    assert theirs == "Nothing remembered about that."


async def test_a_newer_fact_saved_by_an_agent_replaces_the_old_one(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    memory = memory_of(tenant_a)
    await memory.remember([MemoryCreate(content="Acme's newsletter goes out on Thursdays.")])
    search, save = tools_for(memory, app_pool)

    saved = await asyncio.to_thread(save.run, content="Acme's newsletter goes out on Fridays.")
    found = await asyncio.to_thread(search.run, query="newsletter day")

    # The same sentence with another day is an update of it, subject or not.
    assert saved == "Remembered (superseded)."
    assert [hit["content"] for hit in orjson.loads(found)] == [
        "Acme's newsletter goes out on Fridays."
    ]
