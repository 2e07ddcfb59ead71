"""/v1/memories: search, add, read and forget the tenant's long-term memory."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from opshub.api.deps import AdminDep, MemberDep, StateDep, ViewerDep
from opshub.errors import InvalidInputError
from opshub.memory import bulk as memory_bulk
from opshub.memory import service as memory_service
from opshub.memory.models import MemoryKind, Scope
from opshub.memory.schemas import (
    MemoriesForgotten,
    MemoriesImported,
    MemoryCreate,
    MemoryImport,
    MemoryPage,
    MemoryRead,
    MemorySaved,
    MemorySettings,
    MemorySettingsUpdate,
)

router = APIRouter(prefix="/v1/memories", tags=["memory"])

ScopeQuery = Annotated[
    str | None, Query(max_length=210, description="tenant, crew:<name>, agent:<role>, thread:<id>")
]


@router.get("", response_model=MemoryPage)
async def search_memories(
    ctx: ViewerDep,
    state: StateDep,
    query: Annotated[str | None, Query(max_length=2_000, description="No query: newest")] = None,
    scope: ScopeQuery = None,
    kind: Annotated[MemoryKind | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> MemoryPage:
    where = memory_service.MemoryFilter(
        scopes=[Scope.parse(scope)] if scope else None, kinds=[kind] if kind else None
    )
    tenant_id = ctx.principal.tenant_id
    if query and query.strip():
        items = await memory_service.search(
            ctx.conn,
            tenant_id=tenant_id,
            embedders=state.embedders,
            query=query,
            limit=limit,
            where=where,
            ef_search=state.settings.memory_ef_search,
        )
    else:
        items = await memory_service.recent(ctx.conn, tenant_id=tenant_id, limit=limit, where=where)
    return MemoryPage(items=items)


@router.post("", response_model=MemorySaved, status_code=201)
async def add_memory(
    ctx: MemberDep, state: StateDep, body: MemoryCreate, response: Response
) -> MemorySaved:
    saved = await memory_service.remember(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        embedders=state.embedders,
        item=body,
        index_builder=state.memory_indexes,
    )
    if saved.outcome in ("duplicate", "refreshed"):
        response.status_code = 200
    return saved


@router.post("/import", response_model=MemoriesImported)
async def import_memories(ctx: AdminDep, state: StateDep, body: MemoryImport) -> MemoriesImported:
    """Up to 5,000 memories at once, all or none, e.g. from another store: rows that bring their
    vector are stored as they are, the rest embedded first. Only exact repeats are skipped."""
    return await memory_bulk.import_memories(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        embedders=state.embedders,
        items=body.memories,
        index_builder=state.memory_indexes,
    )


@router.delete("", response_model=MemoriesForgotten)
async def forget_memories(
    ctx: MemberDep,
    scope: ScopeQuery = None,
) -> MemoriesForgotten:
    if not scope:
        raise InvalidInputError(
            "name the scope to forget (?scope=thread:<id>); DELETE /v1/memories/all erases "
            "every memory",
            details={"fields": [{"loc": "query.scope", "message": "required"}]},
        )
    deleted = await memory_service.forget_scope(
        ctx.conn, tenant_id=ctx.principal.tenant_id, scope=Scope.parse(scope)
    )
    return MemoriesForgotten(deleted=deleted)


@router.delete("/all", response_model=MemoriesForgotten)
async def erase_memories(ctx: AdminDep) -> MemoriesForgotten:
    """An erasure request: every memory of the tenant, superseded history included."""
    deleted = await memory_service.erase_tenant(ctx.conn, tenant_id=ctx.principal.tenant_id)
    return MemoriesForgotten(deleted=deleted)


@router.get("/settings", response_model=MemorySettings)
async def get_memory_settings(ctx: ViewerDep, state: StateDep) -> MemorySettings:
    return await memory_service.get_settings(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        extraction_default=state.settings.memory_extraction,
    )


@router.patch("/settings", response_model=MemorySettings)
async def update_memory_settings(
    ctx: AdminDep, state: StateDep, body: MemorySettingsUpdate
) -> MemorySettings:
    tenant_id = ctx.principal.tenant_id
    await memory_service.set_extraction(ctx.conn, tenant_id=tenant_id, enabled=body.extraction)
    return await memory_service.get_settings(
        ctx.conn, tenant_id=tenant_id, extraction_default=state.settings.memory_extraction
    )


@router.get("/{memory_id}", response_model=MemoryRead)
async def get_memory(ctx: ViewerDep, memory_id: uuid.UUID) -> MemoryRead:
    return await memory_service.get_memory(
        ctx.conn, tenant_id=ctx.principal.tenant_id, memory_id=memory_id
    )


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(ctx: MemberDep, memory_id: uuid.UUID) -> None:
    await memory_service.delete_memory(
        ctx.conn, tenant_id=ctx.principal.tenant_id, memory_id=memory_id
    )
