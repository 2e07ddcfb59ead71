"""Who is calling the MCP endpoint: the REST API's bearer authentication and roles, unchanged.

Every HTTP request to ``/mcp`` is authenticated before the MCP transport sees it (the endpoint is
stateless, so every tool call is its own request): no or a bad key is a 401 with the API's error
envelope. Each tool then runs in a transaction bound to the caller's tenant, after the same role
check its REST route makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mcp.server.fastmcp import Context
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from opshub.api.errors import error_response
from opshub.api.state import AppState
from opshub.auth import service as auth_service
from opshub.auth.errors import AuthenticationError, PermissionDeniedError
from opshub.auth.models import Principal, Role
from opshub.db.engine import tenant_transaction, transaction
from opshub.db.sql import Connection

_CALLER = "opshub_mcp_caller"


@dataclass(frozen=True, slots=True)
class Caller:
    state: AppState
    principal: Principal

    @property
    def actor(self) -> str:
        """How the audit names whoever decided: as the REST API does."""
        return f"{self.principal.kind.value}:{self.principal.subject_id}"

    @asynccontextmanager
    async def transaction(self, minimum: Role) -> AsyncIterator[Connection]:
        """A transaction bound to the caller's tenant, for a caller with at least ``minimum``."""
        if not self.principal.role.at_least(minimum):
            raise PermissionDeniedError(f"this needs the {minimum.value} role or higher")
        async with tenant_transaction(self.state.app_pool, self.principal.tenant_id) as conn:
            yield conn


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "send Authorization: Bearer <token or ohk_ API key>", code="missing_credentials"
        )
    return token.strip()


class Authenticated:
    """Refuses a request without a valid tenant API key or session token; passes the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        state: AppState = request.app.state.opshub
        try:
            bearer = _bearer(request.headers.get("authorization"))
            async with transaction(state.app_pool) as conn:
                principal = await auth_service.authenticate(
                    conn, bearer=bearer, jwt_secret=state.jwt_secret
                )
        except AuthenticationError as exc:
            refusal = error_response(
                401, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"}
            )
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})[_CALLER] = Caller(state=state, principal=principal)
        await self._app(scope, receive, send)


def caller(ctx: Context) -> Caller:  # type: ignore[type-arg]
    """The authenticated caller of the HTTP request that carries this tool call."""
    request = ctx.request_context.request
    assert isinstance(request, Request)  # noqa: S101 - the streamable HTTP transport sets it
    found: Caller = request.scope["state"][_CALLER]
    return found
