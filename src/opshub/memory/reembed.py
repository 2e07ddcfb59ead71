"""Move a tenant's memories to another embedding model, in batches, while the hub keeps serving.

The tenant's active model switches first, so new memories are written with it and recall compares
only its vectors; rows not yet moved are found by full text until their batch is done.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from opshub.db.engine import tenant_transaction
from opshub.memory.embedders import MODELS, Embedders
from opshub.memory.errors import UnknownEmbeddingModelError
from opshub.memory.service import QUERIES, vector_text


async def reembed_tenant(
    pool: asyncpg.Pool,
    *,
    tenant_id: uuid.UUID,
    embedders: Embedders,
    model: str,
    batch_size: int = 256,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    if model not in MODELS:
        raise UnknownEmbeddingModelError(model)
    async with tenant_transaction(pool, tenant_id) as conn:
        await QUERIES["set_active_model"].execute(conn, tenant_id=tenant_id, embedding_model=model)
    embedder = embedders.for_model(model, tenant_id=tenant_id)
    moved = 0
    while True:
        async with tenant_transaction(pool, tenant_id) as conn:
            rows = await QUERIES["rows_to_reembed"].fetch(
                conn, tenant_id=tenant_id, embedding_model=model, limit=batch_size
            )
            if not rows:
                return moved
            vectors = await embedder.embed([row["content"] for row in rows])
            await QUERIES["reembed_one"].executemany(
                conn,
                [
                    {
                        "tenant_id": tenant_id,
                        "memory_id": row["id"],
                        "embedding": vector_text(vector),
                        "embedding_model": model,
                    }
                    for row, vector in zip(rows, vectors, strict=True)
                ],
            )
        moved += len(rows)
        if on_batch is not None:
            on_batch(moved)
