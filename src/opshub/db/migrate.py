"""Schema migrations (Alembic) and provisioning of the application's login role."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from opshub.db.engine import DatabaseUrls, create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseMisconfiguredError(RuntimeError):
    """The configured roles would defeat tenant isolation or cannot be provisioned."""


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
    """Bring the schema to head, then make sure the app role can log in and is bound by RLS."""
    # Alembic's env runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade, urls.owner)
    engine = create_engine(urls.owner, pool_size=1)
    try:
        await provision_app_role(engine, urls.app)
    finally:
        await engine.dispose()


async def provision_app_role(owner_engine: AsyncEngine, app_url: str) -> None:
    url = make_url(app_url)
    role = url.username or ""
    if not _ROLE_NAME.match(role):
        raise DatabaseMisconfiguredError(f"app database role {role!r} is not a plain role name")
    async with owner_engine.begin() as conn:
        owner = (await conn.execute(text("SELECT current_user"))).scalar_one()
        if role == owner:
            raise DatabaseMisconfiguredError(
                "the app database URL uses the owner role; tenant requests need a role bound by RLS"
            )
        existing = (
            await conn.execute(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = :r"),
                {"r": role},
            )
        ).first()
        if existing is not None and existing[0]:
            raise DatabaseMisconfiguredError(
                f"role {role} is a superuser or has BYPASSRLS: it would see every tenant"
            )
        verb = "ALTER" if existing is not None else "CREATE"
        statement = f'{verb} ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
        if url.password is not None:
            quoted = await conn.scalar(
                text("SELECT quote_literal(CAST(:pw AS text))"), {"pw": url.password}
            )
            statement += f" PASSWORD {quoted}"
        await conn.execute(text(statement))
        await conn.execute(text(f'GRANT opshub_tenant TO "{role}"'))
