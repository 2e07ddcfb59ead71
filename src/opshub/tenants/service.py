"""Tenants, their first owner and API keys.

``create_tenant`` and ``list_tenants`` are platform administration: they run on the owner
connection. The API-key functions run on either connection; on a tenant connection RLS confines
them to that tenant.
"""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy import func, insert, select, update

from opshub.auth import crypto
from opshub.auth.errors import PermissionDeniedError
from opshub.db import sql
from opshub.db.sql import Connection
from opshub.errors import NotFoundError
from opshub.tenants.errors import EmailTakenError
from opshub.tenants.models import ApiKey, Role, Tenant, User
from opshub.tenants.schemas import ApiKeyRead, TenantRead

_TENANT_COLUMNS = (Tenant.id, Tenant.name, Tenant.plan, Tenant.created_at)
_KEY_COLUMNS = (
    ApiKey.id,
    ApiKey.name,
    ApiKey.prefix,
    ApiKey.role,
    ApiKey.created_at,
    ApiKey.revoked_at,
)


async def create_tenant(
    conn: Connection, *, name: str, owner_email: str, password: str, plan: str = "standard"
) -> tuple[TenantRead, str]:
    """Create the tenant, its owner user and a first owner API key; return (tenant, key)."""
    tenant = await sql.fetchrow(
        conn, insert(Tenant).values(name=name, plan=plan).returning(*_TENANT_COLUMNS)
    )
    assert tenant is not None  # noqa: S101 - INSERT … RETURNING yields its row
    user = insert(User).values(
        tenant_id=tenant["id"],
        email=owner_email.strip().lower(),
        password_hash=crypto.hash_password(password),
        role=Role.owner.value,
    )
    try:
        await sql.fetch(conn, user)
    except asyncpg.UniqueViolationError as exc:
        raise EmailTakenError(f"a user with e-mail {owner_email} already exists") from exc
    _, key = await create_api_key(conn, tenant_id=tenant["id"], name="first key", role=Role.owner)
    return TenantRead.model_validate(dict(tenant)), key


async def list_tenants(conn: Connection) -> list[TenantRead]:
    rows = await sql.fetch(conn, select(*_TENANT_COLUMNS).order_by(Tenant.created_at))
    return [TenantRead.model_validate(dict(row)) for row in rows]


async def get_tenant_or_raise(conn: Connection, *, tenant_id: uuid.UUID) -> TenantRead:
    row = await sql.fetchrow(conn, select(*_TENANT_COLUMNS).where(Tenant.id == tenant_id))
    if row is None:
        raise NotFoundError(f"no tenant with id {tenant_id}")
    return TenantRead.model_validate(dict(row))


async def create_api_key(
    conn: Connection, *, tenant_id: uuid.UUID, name: str, role: Role, creator: Role | None = None
) -> tuple[ApiKeyRead, str]:
    """``creator``: the role of the person making the key (None: the platform, e.g. the CLI);
    a key never gets a higher role than theirs."""
    if creator is not None and not creator.at_least(role):
        raise PermissionDeniedError("a key can't have a higher role than its creator")
    key, prefix, key_hash = crypto.new_api_key()
    statement = (
        insert(ApiKey)
        .values(tenant_id=tenant_id, name=name, prefix=prefix, key_hash=key_hash, role=role.value)
        .returning(*_KEY_COLUMNS)
    )
    row = await sql.fetchrow(conn, statement)
    return ApiKeyRead.model_validate(dict(row or {})), key


async def list_api_keys(conn: Connection) -> list[ApiKeyRead]:
    rows = await sql.fetch(conn, select(*_KEY_COLUMNS).order_by(ApiKey.created_at))
    return [ApiKeyRead.model_validate(dict(row)) for row in rows]


async def revoke_api_key(conn: Connection, *, key_id: uuid.UUID, revoker: Role) -> ApiKeyRead:
    """``revoker``: the caller's role; a key of a higher role is not theirs to revoke (an admin
    could otherwise lock the owner's automation out)."""
    role = await sql.fetchval(conn, select(ApiKey.role).where(ApiKey.id == key_id))
    if role is None:
        raise NotFoundError("no such API key")
    if not revoker.at_least(Role(role)):
        raise PermissionDeniedError(f"revoking a key of the {role} role needs that role or higher")
    statement = (
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
        .returning(*_KEY_COLUMNS)
    )
    row = await sql.fetchrow(conn, statement)
    if row is None:
        raise NotFoundError("no such API key")
    return ApiKeyRead.model_validate(dict(row))
