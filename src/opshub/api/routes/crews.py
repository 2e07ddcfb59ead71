"""/v1/crews: what each crew can do, and the model a tenant picks for it."""

from __future__ import annotations

from fastapi import APIRouter

from opshub.api.deps import AdminDep, ViewerDep
from opshub.crews import service as crews_service
from opshub.crews.schemas import CrewRead, CrewSettingsPut

router = APIRouter(prefix="/v1/crews", tags=["crews"])


@router.get("", response_model=list[CrewRead])
async def list_crews(ctx: ViewerDep) -> list[CrewRead]:
    return await crews_service.list_crews(ctx.conn, tenant_id=ctx.principal.tenant_id)


@router.put("/{name}/settings", response_model=CrewRead)
async def put_crew_settings(ctx: AdminDep, name: str, body: CrewSettingsPut) -> CrewRead:
    return await crews_service.put_settings(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        crew=name,
        provider=body.provider,
        model=body.model,
    )
