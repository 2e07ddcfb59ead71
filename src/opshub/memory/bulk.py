"""Bulk import of memories that are embedded already: binary COPY instead of one INSERT each.

``remember_many`` weighs every memory against what is stored (refresh, supersede, near
duplicates) at a few round trips apiece: right for what agents learn, far too slow to import
thousands (a migration from another store, a re-import). An import only skips exact duplicates.
The rows are COPYed in binary into a temporary table, then moved with one ``INSERT … SELECT …
ON CONFLICT DO NOTHING`` against ``ux_memories_live_content``: RLS checks every row, and running
the same import twice inserts nothing the second time.

A tenant that crosses the index threshold this way gets its HNSW index from the scheduler's sweep
(``opshub.memory.indexes.maintain``) or from the caller (``IndexBuilder.request``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import orjson

from opshub.db.sql import Connection
from opshub.memory.embedders import MODELS
from opshub.memory.errors import UnknownEmbeddingModelError
from opshub.memory.models import Scope
from opshub.memory.service import QUERIES, content_hash

# (content, scope, scope_key, kind, embedding, metadata, importance); scope is "tenant", "crew",
# "agent" or "thread" and scope_key its key ("" for tenant). An embedding is a list of floats or
# a 1-d numpy array.
BulkRow: TypeAlias = tuple[str, str, str, str, Iterable[float], Mapping[str, Any], float]

_STAGE = "memories_import"
_COLUMNS = ("content", "scope", "scope_key", "kind", "embedding", "metadata", "importance",
            "content_hash")  # fmt: skip

# The embedding travels as real[], which asyncpg encodes in binary on its own, and becomes a
# vector in the INSERT: no codec for the extension's type is set on the (pooled) connection,
# where it would change what every later user of the connection reads back.
CREATE_STAGE = f"""
CREATE TEMPORARY TABLE {_STAGE} (
    content text, scope text, scope_key text, kind text, embedding real[], metadata text,
    importance double precision, content_hash bytea
) ON COMMIT DROP"""

MOVE = f"""
WITH moved AS (
    INSERT INTO memories (tenant_id, scope, scope_key, kind, content, embedding, embedding_model,
                          metadata, content_hash, importance)
    SELECT $1, scope, scope_key, kind, content, embedding::vector(384), $2, metadata::jsonb,
           content_hash, importance
      FROM {_STAGE}
        ON CONFLICT (tenant_id, scope, scope_key, content_hash) WHERE superseded_by IS NULL
        DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM moved"""  # noqa: S608 - a fixed table name


def _floats(embedding: Iterable[float]) -> list[float]:
    # A numpy array's tolist() is one C call; iterating it would box every element.
    tolist = getattr(embedding, "tolist", None)
    return tolist() if tolist is not None else list(embedding)  # type: ignore[no-any-return]


def _record(row: BulkRow) -> tuple[Any, ...]:
    content, scope, scope_key, kind, embedding, metadata, importance = row
    # The scopes remember() accepts (a thread's key is its id); kinds, lengths and the dimension
    # are checked by the table and the cast.
    Scope.parse(f"{scope}:{scope_key}" if scope_key else scope)
    return (
        content,
        scope,
        scope_key,
        kind,
        _floats(embedding),
        orjson.dumps(metadata).decode(),
        importance,
        content_hash(content),
    )


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
    records: Sequence[tuple[Any, ...]] = [_record(row) for row in rows]
    if not records:
        return 0
    # remember() decides on what is stored under this lock; an import must not race it.
    await conn.execute(QUERIES["lock_tenant_writes"], tenant_id)
    await conn.execute(CREATE_STAGE)
    await conn.copy_records_to_table(_STAGE, records=records, columns=_COLUMNS)
    inserted: int = await conn.fetchval(MOVE, tenant_id, model)
    # ON COMMIT DROP acts at the end of the transaction; a second import in it needs the name.
    # (After an error the transaction, or its savepoint, rolls the table back with it.)
    await conn.execute(f"DROP TABLE {_STAGE}")
    return inserted
