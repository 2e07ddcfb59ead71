"""Recall: exact below the index threshold, through the tenant's own HNSW index above it."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from opshub.db.engine import DatabaseUrls, create_pool, tenant_transaction
from opshub.memory import service as memory_service
from opshub.memory.embedders import LOCAL_MODEL, Embedders
from opshub.memory.indexes import nearest_indexed
from opshub.memory.models import MemoryKind, Scope
from opshub.memory.run_memory import TenantMemory
from opshub.memory.schemas import MemoryCreate
from tests.conftest import TenantHandle

PRODUCTS = [
    f"Product note {n}: the {colour} {item} sells best in {month}."
    for n, (colour, item, month) in enumerate(
        (c, i, m)
        for c in ("red", "blue", "green", "black")
        for i in ("mug", "scarf", "tent", "lamp", "kettle")
        for m in ("March", "July", "November")
    )
]


async def test_a_tenant_over_the_threshold_is_searched_through_its_own_index(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle, tenant_b: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    memory = memory_of(tenant_a, index_threshold=40)
    other = memory_of(tenant_b, index_threshold=40)
    # One thread each: the notes are near-duplicates of one another, and dedupe is per scope.
    threads = [f"thread:{uuid.uuid4()}" for _ in PRODUCTS]
    await memory.remember(
        [
            MemoryCreate(content=text, scope=thread)
            for text, thread in zip(PRODUCTS, threads, strict=True)
        ]
    )
    await other.remember([MemoryCreate(content="Blue Bakery's blue mug sells best in July.")])
    await memory.index_builder.wait()
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        assert await conn.fetchval(
            "SELECT index_name FROM memory_indexes WHERE tenant_id = $1", tenant_a.id
        )
        # 60 rows are cheaper to sort than to walk a graph; without sorting, the planner must
        # show the index matches the query's predicate under RLS.
        await conn.execute("SET LOCAL enable_sort = off")
        query = nearest_indexed(tenant_a.id, LOCAL_MODEL, 100)
        vector = "[" + ",".join(["0.05"] * 384) + "]"
        named = {"vector": vector, "scopes": None, "kinds": None, "metadata": {}, "limit": 10}
        plan = "\n".join(
            row[0] for row in await conn.fetch("EXPLAIN " + query.text, *query.args(named))
        )
    assert "ix_memories_hnsw_" in plan
    hits = await memory.search("When does the blue mug sell best?", limit=3)
    assert any("blue mug sells best in July" in hit.content for hit in hits)
    assert all("Bakery" not in hit.content for hit in hits)
    # Through the index too, a filter keeps to what it asks: one thread's note, no other kind,
    # no other metadata (the index's walk finds the others closer; the filter leaves them out).
    for where, expected in [
        (memory_service.MemoryFilter(scopes=[Scope.parse(threads[40])]), [PRODUCTS[40]]),
        (memory_service.MemoryFilter(kinds=[MemoryKind.preference]), []),
        (memory_service.MemoryFilter(metadata={"source": "import"}), []),
    ]:
        filtered = await memory.search("When does the blue mug sell best?", limit=3, where=where)
        assert [hit.content for hit in filtered] == expected, where


async def test_an_exact_identifier_is_found_by_its_words_above_closer_meanings(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle
) -> None:
    """The full-text half of hybrid recall: a question naming an order number gets that order's
    note first, although by meaning alone short notes about other orders are closer to it."""
    memory = memory_of(tenant_a)
    notes = [
        "The tax papers for order 5817 sit in the blue folder beside the lease.",
        "Order 5818 shipped.",
        "Order 5816 shipped.",
        "Order 5871 shipped.",
    ]
    # One thread each: near-identical notes with other figures would supersede one another.
    await memory.remember(
        [MemoryCreate(content=note, scope=f"thread:{uuid.uuid4()}") for note in notes]
    )

    hits = await memory.search("order 5817", limit=4)

    assert hits[0].content == notes[0]
    # The embedding alone ranks the other orders' notes higher: the words put this one first.
    assert hits[0].similarity is not None
    assert all((hit.similarity or 0.0) > hits[0].similarity for hit in hits[1:])
    # Each hit's score (the API's ``score``) fuses its ranks by reciprocal rank (k = 60): the
    # note first by its words and last of four by meaning, then the others by meaning alone.
    assert [hit.score for hit in hits] == pytest.approx(
        [1 / 61 + 1 / 64, 1 / 61, 1 / 62, 1 / 63], rel=1e-9
    )


async def test_a_search_as_the_api_makes_it_finds_by_meaning_alone_and_counts_the_recall(  # type: ignore[no-untyped-def]
    memory_of,
    tenant_a: TenantHandle,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    embedders: Embedders,
) -> None:
    """The API, MCP and console search with ``search``'s defaults: no similarity floor, so a
    note sharing no word with the question is still found, and a hit counts as recalled."""
    note = "Our biggest customer pays its invoices late every quarter."
    await memory_of(tenant_a).remember([MemoryCreate(content=note)])

    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        hits = await memory_service.search(
            conn,
            tenant_id=tenant_a.id,
            embedders=embedders,
            query="Which client is slow to settle bills?",
        )

        # A floor drops a match by meaning alone that is weaker than it; a search that does
        # not touch (``touch=False``) finds the note without counting it as recalled.
        floored = await memory_service.search(
            conn,
            tenant_id=tenant_a.id,
            embedders=embedders,
            query="Which client is slow to settle bills?",
            min_similarity=0.99,
        )
        untouched = await memory_service.search(
            conn,
            tenant_id=tenant_a.id,
            embedders=embedders,
            query="Which client is slow to settle bills?",
            touch=False,
        )

    assert [hit.content for hit in hits] == [note]
    assert hits[0].similarity is not None and 0 < hits[0].similarity < 1  # by meaning only
    assert floored == []
    assert [hit.content for hit in untouched] == [note]
    recalled = await owner_pool.fetchval(
        "SELECT recall_count FROM memories WHERE tenant_id = $1", tenant_a.id
    )
    assert recalled == 1


async def test_a_search_in_one_thread_finds_nothing_of_another_thread(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle, app_pool: asyncpg.Pool, embedders: Embedders
) -> None:
    """Both halves of the hybrid search keep to the asked scopes: the other thread's note is as
    close by meaning and shares the question's words."""
    ours, theirs = f"thread:{uuid.uuid4()}", f"thread:{uuid.uuid4()}"
    note = "Our biggest customer pays its invoices late every quarter."
    await memory_of(tenant_a).remember(
        [
            MemoryCreate(content=note, scope=ours),
            MemoryCreate(
                content="Acme, a large customer, pays its invoices late too.", scope=theirs
            ),
        ]
    )

    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        hits = await memory_service.search(
            conn,
            tenant_id=tenant_a.id,
            embedders=embedders,
            query="Which customer pays invoices late?",
            where=memory_service.MemoryFilter(scopes=[Scope.parse(ours)]),
        )

    assert [hit.content for hit in hits] == [note]


async def test_a_search_for_one_kind_finds_nothing_of_another_kind(  # type: ignore[no-untyped-def]
    memory_of, tenant_a: TenantHandle, app_pool: asyncpg.Pool, embedders: Embedders
) -> None:
    """Both halves of the hybrid search keep to the asked kinds: the fact is as close by meaning
    and shares the question's words."""
    preference = "The owner prefers invoices sent on the first of the month."
    await memory_of(tenant_a).remember(
        [
            MemoryCreate(content=preference, kind=MemoryKind.preference),
            MemoryCreate(
                content="Invoices sent on the first of the month are paid fastest.",
                kind=MemoryKind.fact,
                scope=f"thread:{uuid.uuid4()}",
            ),
        ]
    )

    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        hits = await memory_service.search(
            conn,
            tenant_id=tenant_a.id,
            embedders=embedders,
            query="When are invoices sent?",
            where=memory_service.MemoryFilter(kinds=[MemoryKind.preference]),
        )

    assert [hit.content for hit in hits] == [preference]


async def test_a_runs_recall_never_plans_across_every_partition(  # type: ignore[no-untyped-def]
    embedders: Embedders, urls: DatabaseUrls, tenant_a: TenantHandle
) -> None:
    """A connection plans a prepared statement generically after five uses to compare; on the
    partitioned memories that plan spans all the partitions (tens of ms, on each connection
    for each statement). A run's recall and write plan for the tenant's partition only."""
    pool = await create_pool(urls.app, size=1, transactions_only=True)
    try:
        memory = TenantMemory(app_pool=pool, tenant_id=tenant_a.id, embedders=embedders)
        await memory.remember([MemoryCreate(content=text) for text in PRODUCTS[:3]])
        for _ in range(8):
            assert await memory.search("which tent sells best in July?", limit=3)
        async with pool.acquire() as conn:
            plans = await conn.fetch(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%FROM memories%' AND statement NOT LIKE '%pg_prepared%'"
            )
    finally:
        await pool.close()
    assert plans
    assert max(row["custom_plans"] for row in plans) >= 8
    assert [(row["statement"], row["generic_plans"]) for row in plans] == [
        (row["statement"], 0) for row in plans
    ]
