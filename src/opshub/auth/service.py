"""Resolve a bearer credential to a principal and bind the transaction to its tenant."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from opshub.auth import crypto
from opshub.auth.errors import AuthenticationError
from opshub.auth.models import Principal, PrincipalKind, Role
from opshub.auth.ratelimit import LoginRateLimiter
from opshub.db.sql import Connection, load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


async def authenticate(conn: Connection, *, bearer: str, jwt_secret: bytes) -> Principal:
    if bearer.startswith(crypto.API_KEY_PREFIX):
        row = await QUERIES["api_key_principal"].fetchrow(
            conn, key_hash=crypto.hash_api_key(bearer)
        )
        if row is None:
            raise AuthenticationError(
                "the API key is not valid or has been revoked", code="invalid_api_key"
            )
        return Principal(
            tenant_id=row["tenant_id"],
            role=Role(row["role"]),
            kind=PrincipalKind.api_key,
            subject_id=row["key_id"],
        )
    claims = crypto.decode_token(bearer, secret=jwt_secret)
    try:
        user_id = uuid.UUID(claims["sub"])
    except ValueError as exc:
        raise AuthenticationError("the session token is not valid", code="invalid_token") from exc
    row = await QUERIES["user_principal"].fetchrow(conn, user_id=user_id)
    if row is None or str(row["tenant_id"]) != claims["tid"]:
        raise AuthenticationError("the user of this token no longer exists", code="invalid_token")
    # The role is read fresh, so a demotion takes effect before the token expires.
    return Principal(
        tenant_id=row["tenant_id"],
        role=Role(row["role"]),
        kind=PrincipalKind.user,
        subject_id=user_id,
    )


async def verify_login(
    pool: asyncpg.Pool,
    *,
    email: str,
    password: str,
    limiter: LoginRateLimiter,
    password_checks: crypto.PasswordChecks,
    address: str | None = None,
) -> Principal:
    """The user an e-mail and password belong to, within the login limits (``address``: the
    client's, for the per-address limit). ``pool`` is the sign-in role's; its connection is held
    for the lookup only, so a login waiting for a password check holds none."""
    await limiter.check(email, address=address)
    async with pool.acquire() as conn:
        row = await QUERIES["login_candidate"].fetchrow(conn, email=email.strip())
    verified = await password_checks.verify(row["password_hash"] if row else None, password)
    if row is None or not verified:
        raise AuthenticationError("wrong e-mail or password", code="invalid_credentials")
    return Principal(
        tenant_id=row["tenant_id"],
        role=Role(row["role"]),
        kind=PrincipalKind.user,
        subject_id=row["user_id"],
    )


async def login(
    pool: asyncpg.Pool,
    *,
    email: str,
    password: str,
    limiter: LoginRateLimiter,
    password_checks: crypto.PasswordChecks,
    jwt_secret: bytes,
    ttl_seconds: int,
    address: str | None = None,
) -> tuple[str, int]:
    """``address``: the client's, for the per-address limit."""
    user = await verify_login(
        pool,
        email=email,
        password=password,
        limiter=limiter,
        password_checks=password_checks,
        address=address,
    )
    return crypto.issue_token(
        secret=jwt_secret,
        user_id=user.subject_id,
        tenant_id=user.tenant_id,
        role=user.role,
        ttl_seconds=ttl_seconds,
    )
