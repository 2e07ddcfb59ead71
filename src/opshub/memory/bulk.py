"""Bulk import of memories that are embedded already: binary COPY instead of one INSERT each.

``remember_many`` weighs every memory against what is stored (refresh, supersede, near
duplicates) at a few round trips apiece: right for what agents learn, far too slow to import
thousands (a migration from another store, a re-import). An import only skips exact duplicates.

PostgreSQL refuses ``COPY FROM`` into a table under row-level security, so the rows are COPYed in
binary into a temporary table, then moved with one ``INSERT … SELECT … ON CONFLICT DO NOTHING``
against ``ux_memories_live_content``: RLS checks every row, and the same import run twice inserts
nothing the second time.

``import_memories`` is what ``POST /v1/memories/import`` runs: rows that come without a vector are
embedded with the tenant's active model first. A tenant that crosses the index threshold this way
gets its HNSW index from the index builder, or else from the scheduler's sweep
(``opshub.memory.indexes.maintain``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson
from pgvector import Vector

from opshub.db.sql import Connection
from opshub.errors import InvalidInputError
from opshub.memory.embedders import DIMENSIONS, MODELS, Embedders
from opshub.memory.errors import UnknownEmbeddingModelError
from opshub.memory.indexes import IndexBuilder
from opshub.memory.models import Scope
from opshub.memory.schemas import MemoriesImported, MemoryImportItem
from opshub.memory.service import (
    QUERIES,
    active_model,
    content_hash,
    lock_tenant_writes,
    request_index_if_due,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Embedding: TypeAlias = list[float] | npt.NDArray[np.floating[Any]]

# (content, scope, scope_key, kind, embedding, metadata, importance): scope is "tenant", "crew",
# "agent" or "thread", scope_key its key ("" for the tenant scope).
BulkRow: TypeAlias = "tuple[str, str, str, str, Embedding, Mapping[str, Any], float]"

STAGE = "memories_import"  # the temporary table of queries.sql (create_stage)
COLUMNS = ("content", "scope", "scope_key", "kind", "embedding", "metadata", "importance",
           "content_hash")  # fmt: skip
# Where CREATE EXTENSION put the type (the migration names no schema).
VECTOR_SCHEMA = "public"


def _record(row: BulkRow) -> tuple[Any, ...]:
    content, scope, scope_key, kind, embedding, metadata, importance = row
    # The scopes remember() accepts (a thread's key is its id); kinds and lengths are checked by
    # the table.
    Scope.parse(f"{scope}:{scope_key}" if scope_key else scope)
    vector = Vector(embedding)
    if vector.dimensions() != DIMENSIONS:
        raise InvalidInputError(
            f"an embedding has {vector.dimensions()} dimensions, not {DIMENSIONS}"
        )
    return (
        content,
        scope,
        scope_key,
        kind,
        vector.to_binary(),  # pgvector's binary format, sent as it is (see _identity)
        orjson.dumps(metadata).decode(),
        importance,
        content_hash(content),
    )


def _identity(value: bytes) -> bytes:
    return value


async def bulk_insert(
    conn: Connection, *, tenant_id: uuid.UUID, model: str, rows: Iterable[BulkRow]
) -> int:
    """Store the tenant's rows, embedded with ``model``; return how many were new.

    Runs inside a transaction on a connection bound to ``tenant_id`` (``tenant_transaction``).
    A row whose content (same words, case and spacing aside) is already live in its scope, or
    earlier in ``rows``, is skipped.
    """
    if model not in MODELS:
        raise UnknownEmbeddingModelError(model)
    if not conn.is_in_transaction():  # the staging table lives until the transaction ends
        raise RuntimeError("bulk_insert needs a transaction (tenant_transaction)")
    records = [_record(row) for row in rows]
    if not records:
        return 0
    # remember() decides on what is stored under this lock; an import must not race it.
    await lock_tenant_writes(conn, tenant_id=tenant_id)
    # Binary COPY needs a binary codec for every column. Vectors otherwise travel as text (see
    # queries.sql), so this one lives only for the import: left on a pooled connection, it would
    # change what the connection's next users read back.
    await conn.set_type_codec(
        "vector",
        schema=VECTOR_SCHEMA,
        encoder=_identity,
        decoder=_identity,
        format="binary",
    )
    try:
        # A savepoint: a failed import takes its staging table along and leaves the caller's
        # transaction usable (for the reset below, too).
        async with conn.transaction():
            await QUERIES["create_stage"].execute(conn)
            await conn.copy_records_to_table(STAGE, records=records, columns=COLUMNS)
            inserted: int = await QUERIES["move_stage"].fetchval(
                conn, tenant_id=tenant_id, embedding_model=model
            )
            await QUERIES["drop_stage"].execute(conn)
    finally:
        await conn.reset_type_codec("vector", schema=VECTOR_SCHEMA)
    return inserted


async def import_memories(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    embedders: Embedders,
    items: Sequence[MemoryImportItem],
    index_builder: IndexBuilder | None = None,
) -> MemoriesImported:
    """Store ``items`` under the tenant's active embedding model, all or none."""
    model = await active_model(conn, tenant_id=tenant_id)
    missing = [item.content for item in items if item.embedding is None]
    made = iter(
        await embedders.for_model(model.name, tenant_id=tenant_id).embed(missing) if missing else []
    )
    rows: list[BulkRow] = []
    for item in items:
        scope = Scope.parse(item.scope)
        embedding = item.embedding if item.embedding is not None else next(made)
        rows.append(
            (item.content, scope.kind.value, scope.key, item.kind.value, embedding,
             item.metadata, item.importance)
        )  # fmt: skip
    inserted = await bulk_insert(conn, tenant_id=tenant_id, model=model.name, rows=rows)
    if index_builder is not None:
        await request_index_if_due(conn, tenant_id=tenant_id, model=model, builder=index_builder)
    return MemoriesImported(received=len(items), inserted=inserted, skipped=len(items) - inserted)
