"""Where the database is, the two roles opshub talks to it as, and tenant-scoped transactions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from opshub.config import Settings
from opshub.db.embedded import start_embedded_postgres

SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant_id, true)")


@dataclass(frozen=True)
class DatabaseUrls:
    """``owner`` runs migrations and platform administration; ``app`` serves tenants under RLS."""

    owner: str
    app: str


def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    owner = settings.database_url or start_embedded_postgres(settings.data_dir)
    app = settings.database_app_url or make_url(owner).set(
        username=settings.database_app_role
    ).render_as_string(hide_password=False)
    return DatabaseUrls(owner=_async_url(owner), app=_async_url(app))


def _async_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)


async def set_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    """Bind the rest of this transaction to one tenant; RLS policies read it."""
    await conn.execute(SET_TENANT, {"tenant_id": str(tenant_id)})


@asynccontextmanager
async def tenant_transaction(
    engine: AsyncEngine, tenant_id: uuid.UUID
) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as conn:
        await set_tenant(conn, tenant_id)
        yield conn
