"""/v1/admin: platform administration with the platform admin token (OPSHUB_ADMIN_TOKEN)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import EmailStr, Field

from opshub.api.deps import OwnerConnDep, PlatformAdminDep
from opshub.schemas import StrictInput
from opshub.tenants import service as tenants_service
from opshub.tenants.schemas import TenantRead

router = APIRouter(prefix="/v1/admin", tags=["platform admin"])


class TenantCreate(StrictInput):
    name: str = Field(min_length=1, max_length=200)
    owner_email: EmailStr
    password: str = Field(min_length=8, max_length=1024)
    plan: str = Field(default="standard", min_length=1, max_length=50)


class TenantCreated(TenantRead):
    api_key: str = Field(description="The tenant's first owner API key, shown this once.")


@router.post("/tenants", response_model=TenantCreated, status_code=201)
async def create_tenant(
    _: PlatformAdminDep, conn: OwnerConnDep, body: TenantCreate
) -> TenantCreated:
    tenant, key = await tenants_service.create_tenant(
        conn, name=body.name, owner_email=body.owner_email, password=body.password, plan=body.plan
    )
    return TenantCreated(**tenant.model_dump(), api_key=key)


@router.get("/tenants", response_model=list[TenantRead])
async def list_tenants(_: PlatformAdminDep, conn: OwnerConnDep) -> list[TenantRead]:
    return await tenants_service.list_tenants(conn)
