"""CrewAI's own memory API, with opshub's storage: rows in pgvector, under the tenant's scope."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from crewai import LLM
from crewai.memory.unified_memory import Memory

from opshub.config import Settings
from opshub.db.engine import tenant_transaction
from opshub.llm.crewai_setup import prepare_crewai
from opshub.memory.crewai_storage import TenantMemoryStorage
from opshub.memory.models import Scope, ScopeKind
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer


@pytest.fixture(scope="module")
def model(settings: Settings) -> Iterator[LLM]:
    prepare_crewai(settings.data_dir)  # as a worker does: CrewAI's tracing off, among others
    with FakeLLMServer() as fake:
        yield LLM(
            model="openai/gpt-4.1-mini", api_key="sk-crew-0000", base_url=f"{fake.base_url}/v1"
        )


def crewai_memory(memory, crew: str, llm: LLM) -> tuple[Memory, TenantMemoryStorage]:  # type: ignore[no-untyped-def]
    storage = TenantMemoryStorage(
        memory=memory, scope=Scope(ScopeKind.crew, crew), loop=asyncio.get_running_loop()
    )
    return Memory(storage=storage, embedder=storage.embedder(), llm=llm), storage


async def remember(crew_memory: Memory, content: str, scope: str = "/campaigns") -> None:
    await asyncio.to_thread(
        crew_memory.remember, content, scope=scope, categories=["marketing"], importance=0.7
    )


async def test_crewai_remember_and_recall_land_in_the_tenants_pgvector_rows(  # type: ignore[no-untyped-def]
    memory_of,
    model: LLM,
    tenant_a: TenantHandle,
    app_pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
    monkeypatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # any LanceDB file CrewAI wrote would land here
    crew_memory, storage = crewai_memory(memory_of(tenant_a), "marketing", model)

    await remember(crew_memory, "Acme's hiking campaign converts best on Instagram.")
    await remember(crew_memory, "Acme never discounts its tents.", scope="/pricing")
    matches = await asyncio.to_thread(
        crew_memory.recall, "Which channel works for the hiking campaign?", depth="shallow"
    )

    assert matches[0].record.content == "Acme's hiking campaign converts best on Instagram."
    assert matches[0].record.scope == "/campaigns"
    assert matches[0].record.categories == ["marketing"]
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        rows = await conn.fetch(
            "SELECT scope, scope_key, embedding_model, metadata FROM memories WHERE tenant_id = $1",
            tenant_a.id,
        )
    assert {(r["scope"], r["scope_key"], r["embedding_model"]) for r in rows} == {
        ("crew", "marketing", "local/all-MiniLM-L6-v2")
    }
    assert sorted(await asyncio.to_thread(storage.list_scopes, "/")) == ["/campaigns", "/pricing"]
    assert await asyncio.to_thread(storage.count) == 2
    written = await asyncio.to_thread(lambda: [*tmp_path.rglob("*"), *settings.data_dir.rglob("*")])
    assert not [path for path in written if "lance" in path.name.lower()]


async def test_another_tenants_crewai_memory_sees_nothing_of_this_one(  # type: ignore[no-untyped-def]
    memory_of, model: LLM, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    mine, _ = crewai_memory(memory_of(tenant_a), "marketing", model)
    theirs, their_storage = crewai_memory(memory_of(tenant_b), "marketing", model)
    await remember(mine, "Acme's hiking campaign converts best on Instagram.")

    matches = await asyncio.to_thread(theirs.recall, "hiking campaign Instagram", depth="shallow")

    assert matches == []
    assert await asyncio.to_thread(their_storage.count) == 0
    assert await asyncio.to_thread(their_storage.delete) == 0


@pytest.mark.parametrize("scope_prefix", ["/pricing", None])
async def test_crewai_delete_removes_only_what_it_names(  # type: ignore[no-untyped-def]
    memory_of, model: LLM, tenant_a: TenantHandle, scope_prefix: str | None
) -> None:
    crew_memory, storage = crewai_memory(memory_of(tenant_a), "marketing", model)
    await remember(crew_memory, "Acme's hiking campaign converts best on Instagram.")
    await remember(crew_memory, "Acme never discounts its tents.", scope="/pricing")

    deleted = await asyncio.to_thread(storage.delete, scope_prefix)

    assert deleted == (1 if scope_prefix else 2)
    assert await asyncio.to_thread(storage.count) == 2 - deleted
