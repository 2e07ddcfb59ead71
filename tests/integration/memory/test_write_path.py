"""What is stored and what is refreshed or superseded, with the real local embedding model."""

from __future__ import annotations

import asyncpg
import numpy as np
import orjson

from opshub.db.engine import tenant_transaction
from opshub.memory import service
from opshub.memory.models import MemoryKind
from opshub.memory.schemas import MemoryCreate
from tests.conftest import TenantHandle

SUBJECT = "acme.ads_budget"


async def test_exact_duplicate_is_stored_once(memory_of, tenant_a: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    memory = memory_of(tenant_a)
    [first] = await memory.remember([MemoryCreate(content="Acme's brand colour is forest green.")])
    [again] = await memory.remember(
        [MemoryCreate(content="  acme's brand colour is   FOREST green. ")]
    )
    assert first.outcome == "created"
    assert again.outcome == "duplicate"
    assert again.memory.id == first.memory.id
    hits = await memory.search("brand colour")
    assert [hit.id for hit in hits] == [first.memory.id]


async def test_near_duplicate_refreshes_the_stored_memory(
    memory_of, tenant_a: TenantHandle
) -> None:  # type: ignore[no-untyped-def]
    memory = memory_of(tenant_a)
    [first] = await memory.remember(
        [MemoryCreate(content="The client prefers to be contacted by email.", importance=0.4)]
    )
    [second] = await memory.remember(
        [MemoryCreate(content="The client prefers being contacted by email.", importance=0.9)]
    )
    assert second.outcome == "refreshed"
    assert second.memory.id == first.memory.id
    assert second.memory.importance == 0.9
    assert second.memory.updated_at > first.memory.updated_at


async def test_newer_fact_on_the_same_subject_supersedes(memory_of, tenant_a: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    memory = memory_of(tenant_a)
    [old] = await memory.remember(
        [
            MemoryCreate(
                content="Acme's Google Ads budget is 500 USD a day.", subject="acme.ads_budget"
            )
        ]
    )
    [new] = await memory.remember(
        [
            MemoryCreate(
                content="Acme's Google Ads budget is 800 USD a day.", subject="acme.ads_budget"
            )
        ]
    )
    assert new.outcome == "superseded"
    assert new.superseded == [old.memory.id]
    hits = await memory.search("What is Acme's Google Ads budget?")
    assert [hit.content for hit in hits] == ["Acme's Google Ads budget is 800 USD a day."]
    assert hits[0].kind is MemoryKind.fact


async def test_same_sentence_with_new_figures_supersedes_without_a_subject(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle
) -> None:
    memory = memory_of(tenant_a)
    [old] = await memory.remember([MemoryCreate(content="Acme's Meta budget is 120 USD a day.")])
    [new] = await memory.remember([MemoryCreate(content="Acme's Meta budget is 90 USD a day.")])
    [negated] = await memory.remember(
        [MemoryCreate(content="Acme's Meta budget is not 90 USD a day.")]
    )
    assert (new.outcome, new.superseded) == ("superseded", [old.memory.id])
    assert (negated.outcome, negated.superseded) == ("superseded", [new.memory.id])


async def test_a_memory_indexed_by_another_text_is_found_by_that_text(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    """A run's outcome is found by the request that led to it, not by the words of its answer."""
    memory = memory_of(tenant_a)
    request = "Which courier should ship the Easter hampers?"
    outcome = MemoryCreate(
        content="Outcome: DHL, two days, 4.90 EUR each.", kind=MemoryKind.outcome
    )
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        [saved] = await service.remember_many(
            conn,
            tenant_id=tenant_a.id,
            embedders=memory.embedders,
            items=[outcome],
            index_texts=[request],
        )
        stored = await conn.fetchval(
            "SELECT embedding::text FROM memories WHERE id = $1", saved.memory.id
        )
    [by_request] = await memory.embedders.local.embed([request])
    np.testing.assert_allclose(orjson.loads(stored), by_request, atol=1e-6)
    [hit] = await memory.search("Who ships the Easter hampers?", min_similarity=0.5)
    assert hit.content == outcome.content


async def test_vectors_made_with_a_model_the_tenant_has_left_are_made_again(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    """The run's write-back embeds before its transaction; a tenant re-embedded onto another
    model meanwhile gets vectors of the model it has now, not the ones made for the old one."""
    memory = memory_of(tenant_a)
    item = MemoryCreate(content="Acme ships from the Leipzig warehouse.")
    stale = service.ItemVectors("a-model-left-since", [[0.0] * 384])
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        [saved] = await service.remember_many(
            conn, tenant_id=tenant_a.id, embedders=memory.embedders, items=[item], embedded=stale
        )
        stored = await conn.fetchval(
            "SELECT embedding::text FROM memories WHERE id = $1", saved.memory.id
        )
    [own_words] = await memory.embedders.local.embed([item.content])
    np.testing.assert_allclose(orjson.loads(stored), own_words, atol=1e-6)
