"""Tenants, their first owner and API keys.

``create_tenant`` and ``list_tenants`` are platform administration: they run on the owner
connection. The API-key functions run on either connection; on a tenant connection RLS confines
them to that tenant.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from opshub.auth import crypto
from opshub.auth.errors import PermissionDeniedError
from opshub.auth.models import Role
from opshub.db.sql import Connection, load_queries
from opshub.errors import NotFoundError
from opshub.tenants.errors import EmailTakenError
from opshub.tenants.schemas import ApiKeyRead, TenantRead

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


async def create_tenant(
    conn: Connection, *, name: str, owner_email: str, password: str, plan: str = "standard"
) -> tuple[TenantRead, str]:
    """Create the tenant, its owner user and a first owner API key; return (tenant, key)."""
    tenant = await QUERIES["insert_tenant"].fetchone(conn, name=name, plan=plan)
    try:
        await QUERIES["insert_user"].execute(
            conn,
            tenant_id=tenant["id"],
            email=owner_email.strip().lower(),
            password_hash=crypto.hash_password(password),
            role=Role.owner.value,
        )
    except asyncpg.UniqueViolationError as exc:
        raise EmailTakenError(f"a user with e-mail {owner_email} already exists") from exc
    _, key = await create_api_key(conn, tenant_id=tenant["id"], name="first key", role=Role.owner)
    return TenantRead.model_validate(dict(tenant)), key


async def list_tenants(conn: Connection) -> list[TenantRead]:
    rows = await QUERIES["list_tenants"].fetch(conn)
    return [TenantRead.model_validate(dict(row)) for row in rows]


async def get_tenant(conn: Connection, *, tenant_id: uuid.UUID) -> TenantRead:
    row = await QUERIES["get_tenant"].fetchrow(conn, tenant_id=tenant_id)
    if row is None:
        raise NotFoundError(f"no tenant with id {tenant_id}")
    return TenantRead.model_validate(dict(row))


async def get_plan(conn: Connection, *, tenant_id: uuid.UUID) -> str:
    """The tenant's plan; on a tenant connection, only its own."""
    plan = await QUERIES["get_plan"].fetchval(conn, tenant_id=tenant_id)
    if plan is None:
        raise NotFoundError(f"no tenant with id {tenant_id}")
    return str(plan)


async def create_api_key(
    conn: Connection, *, tenant_id: uuid.UUID, name: str, role: Role, creator: Role | None = None
) -> tuple[ApiKeyRead, str]:
    """``creator``: the role of the person making the key (None: the platform, e.g. the CLI);
    a key never gets a higher role than theirs."""
    if creator is not None and not creator.at_least(role):
        raise PermissionDeniedError("a key can't have a higher role than its creator")
    key, prefix, key_hash = crypto.new_api_key()
    row = await QUERIES["insert_api_key"].fetchrow(
        conn, tenant_id=tenant_id, name=name, prefix=prefix, key_hash=key_hash, role=role.value
    )
    return ApiKeyRead.model_validate(dict(row or {})), key


async def list_api_keys(conn: Connection) -> list[ApiKeyRead]:
    rows = await QUERIES["list_api_keys"].fetch(conn)
    return [ApiKeyRead.model_validate(dict(row)) for row in rows]


async def revoke_api_key(conn: Connection, *, key_id: uuid.UUID, revoker: Role) -> ApiKeyRead:
    """``revoker``: the caller's role; a key of a higher role is not theirs to revoke (an admin
    could otherwise lock the owner's automation out)."""
    role = await QUERIES["api_key_role"].fetchval(conn, key_id=key_id)
    if role is None:
        raise NotFoundError("no such API key")
    if not revoker.at_least(Role(role)):
        raise PermissionDeniedError(f"revoking a key of the {role} role needs that role or higher")
    row = await QUERIES["revoke_api_key"].fetchrow(conn, key_id=key_id)
    if row is None:
        raise NotFoundError("no such API key")
    return ApiKeyRead.model_validate(dict(row))
