"""Bulk import: binary COPY of pre-embedded memories, exact duplicates skipped, under RLS."""

from __future__ import annotations

import uuid

import asyncpg
import numpy as np
import pytest

from opshub.db.engine import tenant_transaction
from opshub.errors import InvalidInputError
from opshub.memory.bulk import BulkRow, bulk_insert
from opshub.memory.embedders import LOCAL_MODEL
from opshub.memory.indexes import build_tenant_index
from opshub.memory.service import nearest
from tests.conftest import TenantHandle


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def rows_of(vectors: np.ndarray, *, scope: str = "tenant", key: str = "") -> list[BulkRow]:
    return [
        (f"Imported note {n}: reorder the blue mugs in week {n}.", scope, key, "fact", vector,
         {"source": "import", "n": n}, 0.4)
        for n, vector in enumerate(vectors)
    ]  # fmt: skip


def floats_of(text: str) -> list[float]:
    return [float(value) for value in text.strip("[]").split(",")]


async def test_imported_rows_land_once_and_only_for_their_tenant(
    app_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    vectors = unit_vectors(50, seed=1)
    rows = rows_of(vectors)
    # The same words in other case and spacing are the same memory; the list form is accepted.
    rows.append(("  IMPORTED note 0:   reorder the blue mugs in week 0. ", "tenant", "", "fact",
                 vectors[0].tolist(), {}, 0.9))  # fmt: skip
    thread = str(uuid.uuid4())
    rows.append((rows[0][0], "thread", thread, "fact", vectors[0], {}, 0.5))  # another scope
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        assert await bulk_insert(conn, tenant_id=tenant_a.id, model=LOCAL_MODEL, rows=rows) == 51
        stored = await conn.fetchrow(
            "SELECT embedding, embedding_model, metadata, importance, content_hash IS NOT NULL "
            "AS hashed FROM memories WHERE tenant_id = $1 AND content LIKE 'Imported note 7:%'",
            tenant_a.id,
        )
        # The COPY's binary codec is gone again: vectors read back as text, as everywhere else.
        assert isinstance(stored["embedding"], str)
        assert np.allclose(np.array(floats_of(stored["embedding"])), vectors[7], atol=1e-6)
        assert stored["embedding_model"] == LOCAL_MODEL
        assert stored["metadata"] == {"source": "import", "n": 7}
        assert stored["importance"] == 0.4
        assert stored["hashed"]
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        again = await bulk_insert(conn, tenant_id=tenant_a.id, model=LOCAL_MODEL, rows=rows)
        assert again == 0
        assert await conn.fetchval("SELECT count(*) FROM memories") == 51
    async with tenant_transaction(app_pool, tenant_b.id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM memories") == 0
        assert (
            await conn.fetchval("SELECT count(*) FROM memories WHERE tenant_id = $1", tenant_a.id)
            == 0
        )
        assert await nearest(
            conn, tenant_id=tenant_b.id, model=LOCAL_MODEL, vector=vectors[3].tolist(), limit=5
        ) == []  # fmt: skip


async def test_a_tenant_cannot_import_into_another(
    app_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    async with tenant_transaction(app_pool, tenant_b.id) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # RLS: WITH CHECK
            await bulk_insert(
                conn, tenant_id=tenant_a.id, model=LOCAL_MODEL, rows=rows_of(unit_vectors(3, 2))
            )


async def test_imported_rows_are_recalled_exactly_and_through_the_tenants_index(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    vectors = unit_vectors(120, seed=3)
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        await bulk_insert(conn, tenant_id=tenant_a.id, model=LOCAL_MODEL, rows=rows_of(vectors))
        ids = {
            row["content"]: row["id"]
            for row in await conn.fetch("SELECT id, content FROM memories")
        }

    async def closest(n: int) -> list[tuple[uuid.UUID, float]]:
        async with tenant_transaction(app_pool, tenant_a.id) as conn:
            return await nearest(
                conn, tenant_id=tenant_a.id, model=LOCAL_MODEL, vector=vectors[n].tolist(), limit=3
            )

    def expect(n: int) -> uuid.UUID:
        return ids[f"Imported note {n}: reorder the blue mugs in week {n}."]

    [(first, distance), *_] = await closest(17)  # exact: below the index threshold
    assert first == expect(17)
    assert distance == pytest.approx(0.0, abs=1e-6)
    assert await build_tenant_index(owner_pool, tenant_id=tenant_a.id, model=LOCAL_MODEL)
    [(first, distance), *_] = await closest(99)  # through the tenant's own HNSW index
    assert first == expect(99)
    assert distance == pytest.approx(0.0, abs=1e-6)


async def test_a_bad_row_stores_nothing(app_pool: asyncpg.Pool, tenant_a: TenantHandle) -> None:
    rows = rows_of(unit_vectors(3, seed=4))
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        with pytest.raises(InvalidInputError):
            await bulk_insert(
                conn, tenant_id=tenant_a.id, model=LOCAL_MODEL,
                rows=[*rows, ("Short vector", "tenant", "", "fact", [0.1] * 12, {}, 0.5)],
            )  # fmt: skip
        with pytest.raises(InvalidInputError):  # a thread's key is its id
            await bulk_insert(
                conn, tenant_id=tenant_a.id, model=LOCAL_MODEL,
                rows=[*rows, ("Stray", "thread", "not-an-id", "fact", rows[0][4], {}, 0.5)],
            )  # fmt: skip
        assert await conn.fetchval("SELECT count(*) FROM memories") == 0
        # A value COPY cannot encode, a row the table refuses: the import is undone, the
        # transaction goes on, and the vector codec is reset.
        with pytest.raises(TypeError):
            await bulk_insert(
                conn, tenant_id=tenant_a.id, model=LOCAL_MODEL,
                rows=[*rows, ("Odd weight", "tenant", "", "fact", rows[0][4], {}, "high")],  # type: ignore[list-item]
            )  # fmt: skip
        with pytest.raises(asyncpg.CheckViolationError):
            await bulk_insert(
                conn, tenant_id=tenant_a.id, model=LOCAL_MODEL,
                rows=[*rows, ("Odd kind", "tenant", "", "rumour", rows[0][4], {}, 0.5)],
            )  # fmt: skip
        assert isinstance(await conn.fetchval("SELECT '[1,2]'::vector"), str)
        assert await bulk_insert(conn, tenant_id=tenant_a.id, model=LOCAL_MODEL, rows=rows) == 3
