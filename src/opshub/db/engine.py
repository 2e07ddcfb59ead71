"""Where the database is, the two roles opshub talks to it as, and tenant-scoped transactions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from opshub.config import Settings
from opshub.db.embedded import start_embedded_postgres
from opshub.db.sql import Connection, load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
LOGIN_ROLE = "opshub_login"


@dataclass(frozen=True)
class DatabaseUrls:
    """``owner`` runs migrations and platform administration; ``app`` serves tenants under RLS.

    Both are SQLAlchemy URLs (``postgresql+asyncpg://``); ``dsn()`` gives asyncpg's form.
    """

    owner: str
    app: str

    @property
    def login(self) -> str:
        """The sign-in lookup's role (``LOGIN_ROLE``): the app URL with that user instead."""
        return make_url(self.app).set(username=LOGIN_ROLE).render_as_string(hide_password=False)


def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    owner = settings.database_url or start_embedded_postgres(settings.data_dir)
    app = settings.database_app_url or make_url(owner).set(
        username=settings.database_app_role
    ).render_as_string(hide_password=False)
    return DatabaseUrls(owner=_async_url(owner), app=_async_url(app))


def _async_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """A SQLAlchemy engine, for migrations and provisioning; requests use ``create_pool``."""
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)


async def _init_connection(conn: Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


class _TransactionsOnly(asyncpg.Connection):  # type: ignore[misc]
    """A connection of a pool whose users keep their state in transactions (``SET LOCAL``,
    transaction-scoped locks, ``ON COMMIT DROP``): what outlives them is a LISTEN or a session
    advisory lock, noted here."""

    kept_session_state = False

    async def add_listener(self, channel: str, callback: Any) -> None:
        self.kept_session_state = True
        await super().add_listener(channel, callback)

    def note_session_lock(self) -> None:
        self.kept_session_state = True


def note_session_lock(conn: Connection) -> None:
    """Said by whoever takes a session advisory lock: should its holder fail to unlock (a
    cancelled task, a lost statement), the connection's release resets it rather than handing
    the lock to the pool's next user."""
    note = getattr(conn, "note_session_lock", None)
    if note is not None:
        note()


async def _reset_if_noted(conn: _TransactionsOnly) -> None:
    """On release, after asyncpg has rolled back an open transaction: the full reset
    (``UNLISTEN *``, ``pg_advisory_unlock_all()``, ``RESET ALL``, …; a round trip on every
    release otherwise) only for a connection that listened or took a session lock."""
    if conn.kept_session_state:
        await conn.execute(conn.get_reset_query())
        conn.kept_session_state = False


async def create_pool(url: str, *, size: int, transactions_only: bool = False) -> asyncpg.Pool:
    """``transactions_only``: its users leave no session state behind but LISTENs and session
    advisory locks they note (``note_session_lock``); no ``SET``s or temporary tables that
    outlive a transaction. A released connection is reset only when it kept such state."""
    extra: dict[str, Any] = (
        {"connection_class": _TransactionsOnly, "reset": _reset_if_noted}
        if transactions_only
        else {}
    )
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn(url),
        min_size=1,
        max_size=size,
        init=_init_connection,
        # Timestamps rendered by the database (JSON) come out in UTC, like the rest of the API.
        server_settings={"timezone": "UTC", "application_name": "opshub"},
        **extra,
    )
    return pool


async def set_tenant(conn: Connection, tenant_id: uuid.UUID, *, custom_plans: bool = False) -> None:
    """Bind the rest of this transaction to one tenant; RLS policies read it."""
    query = QUERIES["set_tenant_custom_plans"] if custom_plans else QUERIES["set_tenant"]
    await query.execute(conn, tenant_id=str(tenant_id))


async def ping(conn: Connection) -> None:
    await QUERIES["ping"].execute(conn)


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, *, custom_plans: bool = False
) -> AsyncIterator[Connection]:
    """``custom_plans``: for statements on a table partitioned by tenant (``memories``). A
    connection's prepared statement is planned for its values five times, then once more as a
    generic plan to compare; on a partitioned table that generic plan spans every partition and
    their indexes (20-60 ms to build, on each connection for each statement) only to lose to the
    plan pruned to the tenant's partition. With this set, it is never built."""
    async with pool.acquire() as conn, conn.transaction():
        await set_tenant(conn, tenant_id, custom_plans=custom_plans)
        yield conn


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    async with pool.acquire() as conn, conn.transaction():
        yield conn
