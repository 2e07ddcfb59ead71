from __future__ import annotations

import uuid

from fastapi import APIRouter

from opshub.api.deps import AdminDep
from opshub.tenants import service as tenants_service
from opshub.tenants.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = APIRouter(prefix="/v1/keys", tags=["api keys"])


@router.get("", response_model=list[ApiKeyRead])
async def list_keys(ctx: AdminDep) -> list[ApiKeyRead]:
    return await tenants_service.list_api_keys(ctx.conn)


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_key(ctx: AdminDep, body: ApiKeyCreate) -> ApiKeyCreated:
    row, key = await tenants_service.create_api_key(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        name=body.name,
        role=body.role,
        creator=ctx.principal.role,
    )
    return ApiKeyCreated(**row.model_dump(), key=key)


@router.delete("/{key_id}", response_model=ApiKeyRead)
async def revoke_key(ctx: AdminDep, key_id: uuid.UUID) -> ApiKeyRead:
    return await tenants_service.revoke_api_key(ctx.conn, key_id=key_id, revoker=ctx.principal.role)
