"""Typed dependencies: the app state, the authenticated tenant transaction, role requirements."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import Cookie, Depends, Header, Request

from opshub.api.state import AppState
from opshub.auth import service as auth_service
from opshub.auth import sessions
from opshub.auth.errors import AuthenticationError, PermissionDeniedError
from opshub.auth.models import Principal, Role
from opshub.config import RequestRate
from opshub.db.engine import transaction
from opshub.db.sql import Connection
from opshub.tenants import service as tenants_service


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.opshub
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "send Authorization: Bearer <token or ohk_ API key>", code="missing_credentials"
        )
    return token.strip()


@dataclass(frozen=True, slots=True)
class TenantContext:
    """An open transaction bound to the caller's tenant, and who the caller is."""

    conn: Connection
    principal: Principal


async def _request_rate(state: AppState, conn: Connection, principal: Principal) -> RequestRate:
    plan_of = partial(tenants_service.get_plan, conn, tenant_id=principal.tenant_id)
    return await state.requests.rate_for(principal.tenant_id, plan_of=plan_of)


async def tenant_context(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> AsyncIterator[TenantContext]:
    bearer = _bearer(authorization)
    async with state.admission.turn(bearer), transaction(state.app_pool) as conn:
        principal = await auth_service.authenticate(
            conn, bearer=bearer, jwt_secret=state.jwt_secret
        )
        await state.requests.check(principal.tenant_id, await _request_rate(state, conn, principal))
        yield TenantContext(conn=conn, principal=principal)


async def tenant_context_or_session(
    state: StateDep,
    authorization: Annotated[str | None, Header()] = None,
    session_token: Annotated[str | None, Cookie(alias=sessions.COOKIE)] = None,
) -> AsyncIterator[TenantContext]:
    """Bearer, or else the console's session cookie: a browser's EventSource sends no header.
    Only for reads (GET): a cookie alone would otherwise be open to cross-site requests."""
    credential = authorization or session_token or ""
    async with state.admission.turn(credential), transaction(state.app_pool) as conn:
        if authorization or not session_token:
            principal = await auth_service.authenticate(
                conn, bearer=_bearer(authorization), jwt_secret=state.jwt_secret
            )
        else:
            principal = (await sessions.resolve(conn, token=session_token)).principal
        yield TenantContext(conn=conn, principal=principal)


def require_role(minimum: Role) -> Callable[[TenantContext], Awaitable[TenantContext]]:
    async def check(
        ctx: Annotated[TenantContext, Depends(tenant_context, scope="function")],
    ) -> TenantContext:
        if not ctx.principal.role.at_least(minimum):
            raise PermissionDeniedError(f"this needs the {minimum.value} role or higher")
        return ctx

    return check


async def admin_principal(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """An admin or higher, authenticated in a transaction of its own that has ended: for routes
    that wait on outside services, which must not hold a pooled connection meanwhile."""
    bearer = _bearer(authorization)
    async with state.admission.turn(bearer), transaction(state.app_pool) as conn:
        principal = await auth_service.authenticate(
            conn, bearer=bearer, jwt_secret=state.jwt_secret
        )
        rate = await _request_rate(state, conn, principal)
    await state.requests.check(principal.tenant_id, rate)
    if not principal.role.at_least(Role.admin):
        raise PermissionDeniedError(f"this needs the {Role.admin.value} role or higher")
    return principal


AdminPrincipalDep = Annotated[Principal, Depends(admin_principal)]
# The transaction commits when the route returns, before the response is sent.
ViewerDep = Annotated[TenantContext, Depends(require_role(Role.viewer), scope="function")]
MemberDep = Annotated[TenantContext, Depends(require_role(Role.member), scope="function")]
AdminDep = Annotated[TenantContext, Depends(require_role(Role.admin), scope="function")]
# A read that a browser's session cookie may open too (every role reads).
ReaderDep = Annotated[TenantContext, Depends(tenant_context_or_session, scope="function")]


async def require_platform_admin(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    expected = state.settings.admin_token
    if expected is None:
        raise PermissionDeniedError("platform administration over HTTP is not enabled")
    # As bytes: compare_digest refuses str with non-ASCII characters, which headers may carry.
    given = _bearer(authorization).encode()
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise AuthenticationError("the platform admin token is not valid", code="invalid_token")


async def owner_connection(state: StateDep) -> AsyncIterator[Connection]:
    async with transaction(state.owner_pool) as conn:
        yield conn


PlatformAdminDep = Annotated[None, Depends(require_platform_admin)]
OwnerConnDep = Annotated[Connection, Depends(owner_connection, scope="function")]
