"""Tenants, their first owner and API keys.

``create_tenant`` and ``list_tenants`` are platform administration: they run on the owner
connection. The API-key functions run on either connection; on a tenant connection RLS confines
them to that tenant.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from opshub.auth import crypto
from opshub.errors import NotFoundError
from opshub.tenants.errors import EmailTakenError
from opshub.tenants.models import ApiKey, Role, Tenant, User
from opshub.tenants.schemas import ApiKeyRead, TenantRead

_KEY_COLUMNS = (
    ApiKey.id,
    ApiKey.name,
    ApiKey.prefix,
    ApiKey.role,
    ApiKey.created_at,
    ApiKey.revoked_at,
)


async def create_tenant(
    conn: AsyncConnection, *, name: str, owner_email: str, password: str, plan: str = "standard"
) -> tuple[TenantRead, str]:
    """Create the tenant, its owner user and a first owner API key; return (tenant, key)."""
    tenant = (
        await conn.execute(
            insert(Tenant)
            .values(name=name, plan=plan)
            .returning(Tenant.id, Tenant.name, Tenant.plan, Tenant.created_at)
        )
    ).one()
    try:
        await conn.execute(
            insert(User).values(
                tenant_id=tenant.id,
                email=owner_email.strip().lower(),
                password_hash=crypto.hash_password(password),
                role=Role.owner.value,
            )
        )
    except IntegrityError as exc:
        raise EmailTakenError(f"a user with e-mail {owner_email} already exists") from exc
    _, key = await create_api_key(conn, tenant_id=tenant.id, name="first key", role=Role.owner)
    return TenantRead.model_validate(tenant), key


async def list_tenants(conn: AsyncConnection) -> list[TenantRead]:
    query = select(Tenant.id, Tenant.name, Tenant.plan, Tenant.created_at).order_by(
        Tenant.created_at
    )
    return [TenantRead.model_validate(row) for row in await conn.execute(query)]


async def get_tenant_or_raise(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> TenantRead:
    query = select(Tenant.id, Tenant.name, Tenant.plan, Tenant.created_at).where(
        Tenant.id == tenant_id
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError(f"no tenant with id {tenant_id}")
    return TenantRead.model_validate(row)


async def create_api_key(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, name: str, role: Role
) -> tuple[ApiKeyRead, str]:
    key, prefix, key_hash = crypto.new_api_key()
    row = (
        await conn.execute(
            insert(ApiKey)
            .values(
                tenant_id=tenant_id, name=name, prefix=prefix, key_hash=key_hash, role=role.value
            )
            .returning(*_KEY_COLUMNS)
        )
    ).one()
    return ApiKeyRead.model_validate(row), key


async def list_api_keys(conn: AsyncConnection) -> list[ApiKeyRead]:
    rows = await conn.execute(select(*_KEY_COLUMNS).order_by(ApiKey.created_at))
    return [ApiKeyRead.model_validate(row) for row in rows]


async def revoke_api_key(conn: AsyncConnection, *, key_id: uuid.UUID) -> ApiKeyRead:
    row = (
        await conn.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
            .returning(*_KEY_COLUMNS)
        )
    ).first()
    if row is None:
        raise NotFoundError("no such API key")
    return ApiKeyRead.model_validate(row)
