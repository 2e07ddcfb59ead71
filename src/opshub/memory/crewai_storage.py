"""CrewAI's own memory, stored in opshub's: a ``StorageBackend`` over the tenant's pgvector rows.

A crew given ``crewai.Memory(storage=TenantMemoryStorage(...), embedder=...)`` keeps what its
agents remember in the ``memories`` table under RLS, in one opshub scope (the crew's, by
default), embedded with the tenant's active model: never CrewAI's default LanceDB files or
environment keys. CrewAI's hierarchical scope path and categories live in the row's metadata.

CrewAI calls the sync methods from its worker threads; they run the async store on the worker's
event loop. A CrewAI record's id is kept in the metadata as ``crewai_id``; the write path may fold
a repeat into an existing row, which then keeps its first id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, TypeVar

from crewai.memory.types import MemoryRecord, ScopeInfo

from opshub.db.engine import tenant_transaction
from opshub.db.sql import Record
from opshub.memory import service
from opshub.memory.models import MemoryKind, Scope
from opshub.memory.run_memory import TenantMemory
from opshub.memory.schemas import MemoryCreate

T = TypeVar("T")
MAX_SCOPE_ROWS = 5_000


def _record(row: Record) -> MemoryRecord:
    meta = dict(row["metadata"])
    crewai_id = meta.pop("crewai_id", str(row["id"]))
    path = meta.pop("crewai_scope", "/")
    categories = meta.pop("categories", [])
    return MemoryRecord(
        id=crewai_id,
        content=row["content"],
        scope=path,
        categories=categories,
        metadata=meta,
        importance=row["importance"],
        # CrewAI compares with naive UTC (datetime.utcnow()).
        created_at=row["created_at"].replace(tzinfo=None),
        last_accessed=(row["last_recalled_at"] or row["updated_at"]).replace(tzinfo=None),
    )


def _metadata(record: MemoryRecord) -> dict[str, Any]:
    """CrewAI's fields that opshub's columns do not hold, kept beside the record's metadata."""
    return {
        **record.metadata,
        "crewai_id": record.id,
        "crewai_scope": record.scope,
        "categories": record.categories,
    }


def _matches(
    record: MemoryRecord,
    *,
    scope_prefix: str | None,
    categories: Sequence[str] | None,
    metadata_filter: dict[str, Any] | None,
    record_ids: Sequence[str] | None = None,
    older_than: datetime | None = None,
) -> bool:
    if scope_prefix and not record.scope.startswith(scope_prefix.rstrip("/") or "/"):
        return False
    if categories and not set(categories) & set(record.categories):
        return False
    if metadata_filter and any(record.metadata.get(k) != v for k, v in metadata_filter.items()):
        return False
    if record_ids is not None and record.id not in record_ids:
        return False
    return older_than is None or record.created_at < older_than.replace(tzinfo=None)


class TenantMemoryStorage:
    def __init__(
        self,
        *,
        memory: TenantMemory,
        scope: Scope,
        loop: asyncio.AbstractEventLoop,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._memory = memory
        self._scope = scope
        self._loop = loop
        self._timeout = timeout_seconds

    def embedder(self) -> Callable[[list[str]], list[list[float]]]:
        """The embedder to hand ``crewai.Memory``: the tenant's active model, same as recall."""

        async def embed(texts: list[str]) -> list[list[float]]:
            async with tenant_transaction(self._memory.app_pool, self._memory.tenant_id) as conn:
                model = await service.active_model(conn, tenant_id=self._memory.tenant_id)
            embedder = self._memory.embedders.for_model(
                model.name, tenant_id=self._memory.tenant_id
            )
            return await embedder.embed(texts)

        return lambda texts: self._call(embed(texts))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout)

    async def _in_scope(self) -> list[tuple[uuid.UUID, MemoryRecord]]:
        """The scope's live rows, newest first: opshub's id and CrewAI's view of each."""
        async with tenant_transaction(self._memory.app_pool, self._memory.tenant_id) as conn:
            rows = await conn.fetch(
                service.QUERIES["in_scope"],
                self._memory.tenant_id,
                self._scope.kind.value,
                self._scope.key,
                MAX_SCOPE_ROWS,
            )
        return [(row["id"], _record(row)) for row in rows]

    async def _rows(self) -> list[MemoryRecord]:
        return [record for _, record in await self._in_scope()]

    async def _ids_of(self, **criteria: Any) -> list[uuid.UUID]:
        return [memory_id for memory_id, r in await self._in_scope() if _matches(r, **criteria)]

    # -- writes --

    async def asave(self, records: list[MemoryRecord]) -> None:
        items = [
            MemoryCreate(
                content=record.content,
                scope=str(self._scope),
                kind=MemoryKind.fact,
                importance=record.importance,
                metadata=_metadata(record),
            )
            for record in records
        ]
        vectors = [r.embedding for r in records]
        async with tenant_transaction(self._memory.app_pool, self._memory.tenant_id) as conn:
            await service.remember_many(
                conn,
                tenant_id=self._memory.tenant_id,
                embedders=self._memory.embedders,
                items=items,
                index_builder=self._memory.index_builder,
                vectors=vectors if all(vectors) else None,  # type: ignore[arg-type]
            )

    def save(self, records: list[MemoryRecord]) -> None:
        self._call(self.asave(records))

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        ids = await self._ids_of(
            scope_prefix=scope_prefix,
            categories=categories,
            metadata_filter=metadata_filter,
            record_ids=record_ids,
            older_than=older_than,
        )
        async with tenant_transaction(self._memory.app_pool, self._memory.tenant_id) as conn:
            deleted: int = await conn.fetchval(
                service.QUERIES["delete_many"], self._memory.tenant_id, ids
            )
        return deleted

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return self._call(
            self.adelete(scope_prefix, categories, record_ids, older_than, metadata_filter)
        )

    def update(self, record: MemoryRecord) -> None:
        async def rewrite() -> None:
            found = await self._ids_of(
                scope_prefix=None, categories=None, metadata_filter=None, record_ids=[record.id]
            )
            if not found:
                await self.asave([record])
                return
            memory_id = found[0]
            async with tenant_transaction(self._memory.app_pool, self._memory.tenant_id) as conn:
                await conn.execute(
                    service.QUERIES["rewrite"],
                    self._memory.tenant_id,
                    memory_id,
                    record.content,
                    service.content_hash(record.content),
                    record.importance,
                    _metadata(record),
                    service.vector_text(record.embedding) if record.embedding else None,
                )

        self._call(rewrite())

    def reset(self, scope_prefix: str | None = None) -> None:
        self.delete(scope_prefix=scope_prefix)

    # -- reads --

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        tenant_id = self._memory.tenant_id
        async with tenant_transaction(self._memory.app_pool, tenant_id) as conn:
            model = await service.active_model(conn, tenant_id=tenant_id)
            # Over-fetch: CrewAI's path and category filters are applied here, after ranking.
            nearest = await service.nearest(
                conn,
                tenant_id=tenant_id,
                model=model.name,
                indexed=model.indexed,
                vector=query_embedding,
                limit=max(limit * 5, 50),
                where=service.MemoryFilter(scopes=[self._scope]),
                ef_search=self._memory.ef_search,
            )
            rows = await conn.fetch(
                service.QUERIES["rows_by_id"], tenant_id, [i for i, _ in nearest]
            )
        by_id = {row["id"]: row for row in rows}
        found = []
        for memory_id, distance in nearest:
            record = _record(by_id[memory_id])
            score = 1 - distance
            if score >= min_score and _matches(
                record,
                scope_prefix=scope_prefix,
                categories=categories,
                metadata_filter=metadata_filter,
            ):
                found.append((record, score))
        return found[:limit]

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        return self._call(
            self.asearch(
                query_embedding, scope_prefix, categories, metadata_filter, limit, min_score
            )
        )

    def get_record(self, record_id: str) -> MemoryRecord | None:
        return next((r for r in self._call(self._rows()) if r.id == record_id), None)

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        records = [
            r
            for r in self._call(self._rows())
            if _matches(r, scope_prefix=scope_prefix, categories=None, metadata_filter=None)
        ]
        return records[offset : offset + limit]

    def count(self, scope_prefix: str | None = None) -> int:
        return len(self.list_records(scope_prefix, limit=MAX_SCOPE_ROWS))

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.list_records(scope_prefix, limit=MAX_SCOPE_ROWS):
            for category in record.categories:
                counts[category] = counts.get(category, 0) + 1
        return counts

    def list_scopes(self, parent: str = "/") -> list[str]:
        base = parent.rstrip("/") + "/"
        children = set()
        for record in self.list_records(parent, limit=MAX_SCOPE_ROWS):
            rest = record.scope[len(base) :] if record.scope.startswith(base) else ""
            if rest:
                children.add(base + rest.split("/")[0])
        return sorted(children)

    def get_scope_info(self, scope: str) -> ScopeInfo:
        records = self.list_records(scope, limit=MAX_SCOPE_ROWS)
        return ScopeInfo(
            path=scope,
            record_count=len(records),
            categories=sorted({c for r in records for c in r.categories}),
            oldest_record=min((r.created_at for r in records), default=None),
            newest_record=max((r.created_at for r in records), default=None),
            child_scopes=self.list_scopes(scope),
        )
