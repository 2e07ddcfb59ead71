"""/v1/models/fallback: the model a tenant's runs move to when their provider is down."""

from __future__ import annotations

from fastapi import APIRouter

from opshub.api.deps import AdminDep, ViewerDep
from opshub.llm import fallback
from opshub.llm.fallback import FallbackRead, ModelChoice
from opshub.schemas import StrictInput

router = APIRouter(prefix="/v1/models", tags=["models"])


class FallbackPut(StrictInput):
    fallback: ModelChoice | None


@router.get("/fallback", response_model=FallbackRead)
async def get_fallback(ctx: ViewerDep) -> FallbackRead:
    return FallbackRead(fallback=await fallback.get(ctx.conn, tenant_id=ctx.principal.tenant_id))


@router.put("/fallback", response_model=FallbackRead)
async def put_fallback(ctx: AdminDep, body: FallbackPut) -> FallbackRead:
    await fallback.put(ctx.conn, tenant_id=ctx.principal.tenant_id, choice=body.fallback)
    return FallbackRead(fallback=body.fallback)
