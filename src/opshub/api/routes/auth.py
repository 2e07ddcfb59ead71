from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from opshub.api.deps import StateDep, ViewerDep
from opshub.auth import service as auth_service
from opshub.auth.models import PrincipalKind, Role
from opshub.schemas import StrictInput

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class TokenRequest(StrictInput):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int


class WhoAmI(BaseModel):
    tenant_id: uuid.UUID
    role: Role
    kind: PrincipalKind
    subject_id: uuid.UUID


@router.post("/token", response_model=TokenResponse)
async def create_token(body: TokenRequest, state: StateDep, request: Request) -> TokenResponse:
    token, expires_in = await auth_service.login(
        state.login_pool,
        email=body.email,
        password=body.password,
        limiter=state.limiter,
        password_checks=state.password_checks,
        jwt_secret=state.jwt_secret,
        ttl_seconds=state.settings.jwt_ttl_seconds,
        address=request.client.host if request.client else None,
    )
    return TokenResponse(access_token=token, expires_in=expires_in)


@router.get("/me", response_model=WhoAmI)
async def who_am_i(ctx: ViewerDep) -> WhoAmI:
    p = ctx.principal
    return WhoAmI(tenant_id=p.tenant_id, role=p.role, kind=p.kind, subject_id=p.subject_id)
