"""Remember, recall and forget: the tenant's long-term memory.

Every function runs on a tenant-bound connection inside a transaction. Recall is hybrid: the
vector ranking (exact, or the tenant's own HNSW index, see ``opshub.memory.indexes``) and the
full-text ranking are fused by reciprocal rank; importance, then recency, break ties.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from opshub.db.sql import Connection, Record, load_queries
from opshub.errors import NotFoundError
from opshub.memory.embedders import Embedders
from opshub.memory.indexes import IndexBuilder, search_index
from opshub.memory.models import MemoryKind, Scope, ScopeKind
from opshub.memory.schemas import (
    MemoryCreate,
    MemoryHit,
    MemoryRead,
    MemorySaved,
    MemorySettings,
)

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

# Cosine similarity above which a new memory is about what a stored one says (MiniLM: rewordings
# of one sentence score 0.9+, related but different facts 0.5-0.8). The same sentence with another
# figure, day or negation scores 0.95+ too: that is an update, not a repeat (see ``_restates``).
NEAR_DUPLICATE = 0.92
# Words that change how a sentence reads, not what it claims. Negations are claims: not here.
_FUNCTION_WORDS = frozenset(
    "a an the to be being been is are was were am by of for on in at and or it its that this "
    "these those with as from our we us they their them his her he she you your has have had "
    "do does did will would should can could may might very really also just".split()
)
RRF_K = 60
MAX_EF_SEARCH = 1_000


@dataclass(frozen=True)
class MemoryFilter:
    scopes: Sequence[Scope] | None = None
    kinds: Sequence[MemoryKind] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def args(self) -> tuple[list[str] | None, list[str] | None, dict[str, Any]]:
        refs = [f"{s.kind.value}:{s.key}" for s in self.scopes] if self.scopes else None
        kinds = [k.value for k in self.kinds] if self.kinds else None
        return refs, kinds, self.metadata


def vector_text(vector: Sequence[float]) -> str:
    """pgvector's text form, ``[0.1,-0.2,…]``: orjson writes it 20x faster than ``repr``, the
    same floats exactly (in positional notation)."""
    return orjson.dumps(list(vector)).decode()


def content_hash(content: str) -> bytes:
    """Same words, same hash: case and whitespace do not make a new memory."""
    return hashlib.sha256(re.sub(r"\s+", " ", content.strip().lower()).encode()).digest()


def _restates(new: str, old: str) -> bool:
    """Whether two near-identical texts make the same claims: the same content words, figures
    and negations, whatever the function words, order or inflection around them."""

    def claims(text: str) -> set[str]:
        text = text.lower().replace("\u2019", "'").replace("n't", " not").replace("'s", "")
        words = re.findall(r"[a-z0-9]+(?:[.,][0-9]+)*", text)
        return {w.removesuffix("s") for w in words if w not in _FUNCTION_WORDS}

    return claims(new) == claims(old)


def memory_read(row: Record) -> MemoryRead:
    return MemoryRead(
        id=row["id"],
        scope=str(Scope(ScopeKind(row["scope"]), row["scope_key"])),
        kind=MemoryKind(row["kind"]),
        content=row["content"],
        subject=row["subject"],
        metadata=row["metadata"],
        importance=row["importance"],
        embedding_model=row["embedding_model"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_recalled_at=row["last_recalled_at"],
        recall_count=row["recall_count"],
        expires_at=row["expires_at"],
        superseded_by=row["superseded_by"],
    )


@dataclass(frozen=True)
class ActiveModel:
    name: str
    indexed: bool
    """The tenant's memories of this model have their own HNSW index."""


async def active_model(conn: Connection, *, tenant_id: uuid.UUID) -> ActiveModel:
    row = await QUERIES["active_model"].fetchone(conn, tenant_id=tenant_id)
    return ActiveModel(row["name"], row["indexed"])


async def nearest(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    model: str,
    vector: Sequence[float],
    limit: int,
    where: MemoryFilter | None = None,
    ef_search: int = 100,
    indexed: bool | None = None,
) -> list[tuple[uuid.UUID, float]]:
    """The ``limit`` closest live memories of ``model``: (id, cosine distance), closest first.

    Exact below the index threshold. Through the tenant's index, a filter that leaves fewer than
    ``limit`` of the candidates widens the search, and falls back to the exact path at the end.
    ``indexed``: whether the tenant has its index, if the caller knows (else looked up).
    """
    refs, kinds, metadata = (where or MemoryFilter()).args()
    text = vector_text(vector)
    if indexed is None:
        indexed = bool(
            await QUERIES["tenant_index"].fetchval(conn, tenant_id=tenant_id, embedding_model=model)
        )
    if indexed:
        ef = max(ef_search, limit)
        while True:
            rows = await search_index(
                conn,
                tenant_id=tenant_id,
                model=model,
                ef_search=ef,
                vector=text,
                scopes=refs,
                kinds=kinds,
                metadata=metadata,
                limit=limit,
            )
            if len(rows) >= limit or ef >= MAX_EF_SEARCH:
                break
            ef = min(ef * 4, MAX_EF_SEARCH)
        if len(rows) >= limit or (refs is None and kinds is None and not metadata):
            return [(row["id"], row["distance"]) for row in rows]
    rows = await QUERIES["nearest_exact"].fetch(
        conn,
        tenant_id=tenant_id,
        embedding_model=model,
        vector=text,
        scopes=refs,
        kinds=kinds,
        metadata=metadata,
        limit=limit,
    )
    return [(row["id"], row["distance"]) for row in rows]


async def search(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    embedders: Embedders,
    query: str,
    limit: int = 10,
    where: MemoryFilter | None = None,
    min_similarity: float = 0.0,
    ef_search: int = 100,
    touch: bool = True,
) -> list[MemoryHit]:
    """Hybrid recall of ``query``; ``min_similarity`` drops weak vector-only matches."""
    where = where or MemoryFilter()
    model = await active_model(conn, tenant_id=tenant_id)
    [vector] = await embedders.for_model(model.name, tenant_id=tenant_id).embed([query])
    depth = max(limit * 2, 20)
    by_vector = await nearest(
        conn,
        tenant_id=tenant_id,
        model=model.name,
        vector=vector,
        limit=depth,
        where=where,
        ef_search=ef_search,
        indexed=model.indexed,
    )
    refs, kinds, metadata = where.args()
    by_text = await QUERIES["text_matches"].fetch(
        conn,
        tenant_id=tenant_id,
        query=query,
        scopes=refs,
        kinds=kinds,
        metadata=metadata,
        limit=depth,
    )
    scores: dict[uuid.UUID, float] = {}
    similarity: dict[uuid.UUID, float] = {}
    for rank, (memory_id, distance) in enumerate(by_vector):
        if 1 - distance >= min_similarity:
            similarity[memory_id] = 1 - distance
            scores[memory_id] = 1 / (RRF_K + rank + 1)
    for rank, row in enumerate(by_text):
        scores[row["id"]] = scores.get(row["id"], 0.0) + 1 / (RRF_K + rank + 1)
    if not scores:
        return []
    rows = {
        row["id"]: row
        for row in await QUERIES["rows_by_id"].fetch(
            conn, tenant_id=tenant_id, memory_ids=list(scores)
        )
    }
    ranked = sorted(
        rows.values(),
        key=lambda r: (round(scores[r["id"]], 9), r["importance"], r["updated_at"]),
        reverse=True,
    )[:limit]
    if touch and ranked:
        await QUERIES["mark_recalled"].execute(
            conn, tenant_id=tenant_id, memory_ids=[row["id"] for row in ranked]
        )
    return [
        MemoryHit(
            **memory_read(row).model_dump(),
            score=scores[row["id"]],
            similarity=similarity.get(row["id"]),
        )
        for row in ranked
    ]


async def recent(
    conn: Connection, *, tenant_id: uuid.UUID, limit: int, where: MemoryFilter | None = None
) -> list[MemoryHit]:
    refs, kinds, metadata = (where or MemoryFilter()).args()
    rows = await QUERIES["recent"].fetch(
        conn, tenant_id=tenant_id, scopes=refs, kinds=kinds, metadata=metadata, limit=limit
    )
    return [MemoryHit(**memory_read(row).model_dump(), score=0.0, similarity=None) for row in rows]


async def lock_tenant_writes(conn: Connection, *, tenant_id: uuid.UUID) -> None:
    """Until the transaction ends, the tenant's only memory writer. Taken again in the same
    transaction, it is already held."""
    await QUERIES["lock_tenant_writes"].execute(conn, tenant_id=tenant_id)


async def remember_many(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    embedders: Embedders,
    items: Sequence[MemoryCreate],
    source_task_id: uuid.UUID | None = None,
    index_builder: IndexBuilder | None = None,
    embedded: ItemVectors | None = None,
    index_texts: Sequence[str] | None = None,
    locked: bool = False,
) -> list[MemorySaved]:
    """Store each item unless it is already known: exact duplicates and near-duplicates refresh
    the stored memory; a fact about the same subject supersedes the older one (kept as history).

    ``index_texts``: what each item is found by, when not by its own words (embedded for it).
    ``embedded``: the items' vectors made before this transaction (``embed_items``); made again
    here if the tenant has moved to another model since.
    ``locked``: the caller took ``lock_tenant_writes`` in this transaction already.
    """
    if not items:
        return []
    if embedded is None:  # embedded before the lock: another writer may wait meanwhile
        model = await active_model(conn, tenant_id=tenant_id)
        embedded = await embed_items(
            embedders, model=model.name, tenant_id=tenant_id, items=items, index_texts=index_texts
        )
    if not locked:
        await lock_tenant_writes(conn, tenant_id=tenant_id)
    model = await active_model(conn, tenant_id=tenant_id)
    if embedded.model != model.name:  # the tenant moved to another model meanwhile
        return await remember_many(
            conn,
            tenant_id=tenant_id,
            embedders=embedders,
            items=items,
            source_task_id=source_task_id,
            index_builder=index_builder,
            index_texts=index_texts,
            locked=True,
        )
    if index_builder is not None:
        # Counted before the writes: a transaction that has written holds back every
        # tenant's /v1/events, and the new items count as live (a duplicate among them asks
        # for the index a few rows early).
        await request_index_if_due(
            conn, tenant_id=tenant_id, model=model, builder=index_builder, adding=len(items)
        )
    return [
        await _remember_one(
            conn,
            tenant_id=tenant_id,
            model=model,
            item=item,
            vector=vector,
            source_task_id=source_task_id,
        )
        for item, vector in zip(items, embedded.vectors, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class ItemVectors:
    """The vectors of a batch of items and the model that made them."""

    model: str
    vectors: list[list[float]]


async def embed_items(
    embedders: Embedders,
    *,
    model: str,
    tenant_id: uuid.UUID,
    items: Sequence[MemoryCreate],
    index_texts: Sequence[str] | None = None,
) -> ItemVectors:
    """The vectors ``items`` are found by: ``index_texts`` when given, else their own words."""
    texts = index_texts or [item.content for item in items]
    return ItemVectors(model, await embedders.for_model(model, tenant_id=tenant_id).embed(texts))


async def request_index_if_due(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    model: ActiveModel,
    builder: IndexBuilder,
    adding: int = 0,
) -> None:
    """Ask for the tenant's own index once its live memories, with the ``adding`` about to
    be stored, reach the threshold."""
    if model.indexed:
        return
    held = await QUERIES["live_rows_up_to"].fetchval(
        conn, tenant_id=tenant_id, embedding_model=model.name, limit=builder.threshold
    )
    if held + adding >= builder.threshold:
        builder.request(tenant_id=tenant_id, model=model.name)


async def remember(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    embedders: Embedders,
    item: MemoryCreate,
    source_task_id: uuid.UUID | None = None,
    index_builder: IndexBuilder | None = None,
) -> MemorySaved:
    [saved] = await remember_many(
        conn,
        tenant_id=tenant_id,
        embedders=embedders,
        items=[item],
        source_task_id=source_task_id,
        index_builder=index_builder,
    )
    return saved


async def _remember_one(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    model: ActiveModel,
    item: MemoryCreate,
    vector: Sequence[float],
    source_task_id: uuid.UUID | None,
) -> MemorySaved:
    scope = Scope.parse(item.scope)
    digest = content_hash(item.content)
    same = await QUERIES["find_same_content"].fetchrow(
        conn,
        tenant_id=tenant_id,
        scope=scope.kind.value,
        scope_key=scope.key,
        content_hash=digest,
        importance=item.importance,
        expires_at=item.expires_at,
    )
    if same is not None:
        return MemorySaved(memory=memory_read(same), outcome="duplicate")
    older: list[uuid.UUID] = []
    if item.subject and item.kind in (MemoryKind.fact, MemoryKind.preference):
        older = [
            row["id"]
            for row in await QUERIES["same_subject"].fetch(
                conn,
                tenant_id=tenant_id,
                scope=scope.kind.value,
                scope_key=scope.key,
                subject=item.subject,
            )
        ]
    closest = (
        await nearest(
            conn,
            tenant_id=tenant_id,
            model=model.name,
            vector=vector,
            limit=1,
            where=MemoryFilter(scopes=[scope]),
            indexed=model.indexed,
        )
        if not older
        else []
    )
    if closest:
        [(memory_id, distance)] = closest
        if 1 - distance >= NEAR_DUPLICATE:
            stored = await QUERIES["get"].fetchone(conn, tenant_id=tenant_id, memory_id=memory_id)
            if _restates(item.content, stored["content"]):
                refreshed = await QUERIES["refresh"].fetchone(
                    conn,
                    tenant_id=tenant_id,
                    memory_id=memory_id,
                    importance=item.importance,
                    metadata=item.metadata,
                    expires_at=item.expires_at,
                )
                return MemorySaved(memory=memory_read(refreshed), outcome="refreshed")
            if item.kind in (MemoryKind.fact, MemoryKind.preference):
                older = [memory_id]
    row = await QUERIES["insert"].fetchone(
        conn,
        tenant_id=tenant_id,
        scope=scope.kind.value,
        scope_key=scope.key,
        kind=item.kind.value,
        content=item.content,
        subject=item.subject,
        embedding=vector_text(vector),
        embedding_model=model.name,
        metadata=item.metadata,
        content_hash=digest,
        importance=item.importance,
        source_task_id=source_task_id,
        expires_at=item.expires_at,
    )
    if older:
        await QUERIES["supersede"].execute(
            conn, tenant_id=tenant_id, memory_ids=older, superseded_by=row["id"]
        )
    return MemorySaved(
        memory=memory_read(row),
        outcome="superseded" if older else "created",
        superseded=older,
    )


async def get_memory(conn: Connection, *, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRead:
    row = await QUERIES["get"].fetchrow(conn, tenant_id=tenant_id, memory_id=memory_id)
    if row is None:
        raise NotFoundError("memory not found")
    return memory_read(row)


async def delete_memory(conn: Connection, *, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> None:
    if await QUERIES["delete_one"].fetchval(conn, tenant_id=tenant_id, memory_id=memory_id) is None:
        raise NotFoundError("memory not found")


async def forget_scope(conn: Connection, *, tenant_id: uuid.UUID, scope: Scope) -> int:
    deleted: int = await QUERIES["forget_scope"].fetchval(
        conn, tenant_id=tenant_id, scope=scope.kind.value, scope_key=scope.key
    )
    return deleted


async def erase_tenant(conn: Connection, *, tenant_id: uuid.UUID) -> int:
    """Every memory of the tenant, history included (an erasure request)."""
    deleted: int = await QUERIES["erase_tenant"].fetchval(conn, tenant_id=tenant_id)
    return deleted


async def get_settings(
    conn: Connection, *, tenant_id: uuid.UUID, extraction_default: bool
) -> MemorySettings:
    row = await QUERIES["settings"].fetchone(
        conn, tenant_id=tenant_id, extraction_default=extraction_default
    )
    return MemorySettings(**dict(row))


async def set_extraction(conn: Connection, *, tenant_id: uuid.UUID, enabled: bool) -> None:
    await QUERIES["set_extraction"].execute(conn, tenant_id=tenant_id, enabled=enabled)
