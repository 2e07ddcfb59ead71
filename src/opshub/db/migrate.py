"""Schema migrations (Alembic) and provisioning of the application's login role."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection

from opshub.db import checkpoints
from opshub.db.engine import DatabaseUrls, create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseMisconfiguredError(RuntimeError):
    """The configured roles would defeat tenant isolation or cannot be provisioned."""


class SchemaNotReadyError(RuntimeError):
    """The database's schema is not the one this opshub runs on."""


def alembic_config(owner_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", owner_url.replace("%", "%%"))
    return config


def upgrade(owner_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(owner_url), revision)


def downgrade(owner_url: str, revision: str) -> None:
    command.downgrade(alembic_config(owner_url), revision)


async def migrate(urls: DatabaseUrls) -> None:
    """Check the app role, bring the schema to head, provision the role for RLS, then create or
    migrate chat routing's checkpoint tables (``opshub.db.checkpoints``).

    The role is checked first so that a configuration that would defeat isolation changes
    nothing at all.
    """
    engine = create_engine(urls.owner, pool_size=1)
    try:
        async with engine.connect() as conn:
            existing = await check_app_role(conn, urls.app)
        # Alembic's env runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(upgrade, urls.owner)
        async with engine.begin() as conn:
            await provision_app_role(conn, urls.app, exists=existing)
            await provision_login_role(conn, urls.login)
        await checkpoints.setup(urls.owner)
    finally:
        await engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:
        raise RuntimeError("opshub ships no migrations")
    return head


async def current_revision(owner_url: str) -> str | None:
    """The schema's Alembic revision; None for a database opshub never migrated."""
    engine = create_engine(owner_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            if (await conn.scalar(text("SELECT to_regclass('alembic_version')"))) is None:
                return None
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            return str(revision) if revision is not None else None
    finally:
        await engine.dispose()


async def ensure_schema(urls: DatabaseUrls, *, may_migrate: bool) -> bool:
    """Bring the schema up where opshub owns the database (embedded), as ``serve`` does; on
    any other database say what to run. True when it migrated."""
    current, head = await current_revision(urls.owner), head_revision()
    if current == head:
        return False
    if may_migrate:
        await migrate(urls)
        return True
    state = "has no opshub schema yet" if current is None else f"is at schema {current}"
    raise SchemaNotReadyError(
        f"the database {state}, this opshub needs {head}: run `opshub migrate`"
    )


async def check_app_role(conn: AsyncConnection, app_url: str) -> bool:
    """Refuse an app role that would see every tenant; return whether it exists yet."""
    role = make_url(app_url).username or ""
    if not _ROLE_NAME.match(role):
        raise DatabaseMisconfiguredError(f"app database role {role!r} is not a plain role name")
    owner = (await conn.execute(text("SELECT current_user"))).scalar_one()
    if role == owner:
        raise DatabaseMisconfiguredError(
            "the app database URL uses the owner role; tenant requests need a role bound by RLS"
        )
    existing = (
        await conn.execute(
            text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": role}
        )
    ).first()
    if existing is not None and existing[0]:
        raise DatabaseMisconfiguredError(
            f"role {role} is a superuser or has BYPASSRLS: it would see every tenant"
        )
    return existing is not None


async def provision_app_role(conn: AsyncConnection, app_url: str, *, exists: bool) -> None:
    await _provision_role(conn, app_url, exists=exists)
    await conn.execute(text(f'GRANT opshub_tenant TO "{make_url(app_url).username}"'))


async def provision_login_role(conn: AsyncConnection, login_url: str) -> None:
    """The sign-in path's role: it may call the login lookup, and nothing else."""
    role = make_url(login_url).username
    exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    await _provision_role(conn, login_url, exists=exists is not None)
    await conn.execute(text(f'GRANT opshub_signin TO "{role}"'))


async def _provision_role(conn: AsyncConnection, url_text: str, *, exists: bool) -> None:
    url = make_url(url_text)
    verb = "ALTER" if exists else "CREATE"
    statement = (
        f'{verb} ROLE "{url.username}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
    )
    if url.password is not None:
        quoted = await conn.scalar(
            text("SELECT quote_literal(CAST(:pw AS text))"), {"pw": url.password}
        )
        statement += f" PASSWORD {quoted}"
    await conn.execute(text(statement))
