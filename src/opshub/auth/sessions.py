"""Console sign-in sessions: a random token in an HttpOnly cookie, stored only as its hash.

A session lives in PostgreSQL, so signing out (or disabling the user) ends it at the next request,
wherever the cookie is. Each session carries its own CSRF token for the console's forms.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opshub.auth.errors import AuthenticationError
from opshub.auth.models import Principal, PrincipalKind, Role
from opshub.auth.service import QUERIES
from opshub.db.engine import set_tenant
from opshub.db.sql import Connection

COOKIE = "opshub_session"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id: uuid.UUID
    principal: Principal
    csrf_token: str
    tenant_name: str
    tenant_plan: str

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token.encode())


def _hash(token: str) -> bytes:
    # 256 random bits: a fast hash leaves nothing to brute-force (as for API keys).
    return hashlib.sha256(token.encode()).digest()


async def start(conn: Connection, *, user: Principal, ttl_seconds: int) -> str:
    """A session for a user whose password was verified (``auth.service.verify_login``); returns
    the cookie's token. Binds the transaction to the tenant."""
    await set_tenant(conn, user.tenant_id)
    token = secrets.token_urlsafe(32)
    await QUERIES["start_session"].execute(
        conn,
        tenant_id=user.tenant_id,
        user_id=user.subject_id,
        token_hash=_hash(token),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
    )
    return token


async def resolve(conn: Connection, *, token: str | None) -> ConsoleSession:
    """The live session of a cookie, with its tenant's name and plan; binds the transaction to
    the tenant."""
    row = (
        await QUERIES["resolve_session"].fetchrow(conn, token_hash=_hash(token)) if token else None
    )
    if row is None:
        raise AuthenticationError("sign in to the console", code="session_expired")
    principal = Principal(
        tenant_id=row["tenant_id"],
        role=Role(row["role"]),
        kind=PrincipalKind.user,
        subject_id=row["user_id"],
    )
    return ConsoleSession(
        id=row["session_id"],
        principal=principal,
        csrf_token=row["csrf_token"],
        tenant_name=row["tenant_name"],
        tenant_plan=row["tenant_plan"],
    )


async def end(conn: Connection, *, session_id: uuid.UUID) -> None:
    await QUERIES["end_session"].execute(conn, session_id=session_id)
