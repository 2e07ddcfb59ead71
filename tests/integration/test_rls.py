"""Tenant isolation enforced by PostgreSQL row level security, seen through the app's connection.

Every statement here is hand-written SQL run on the application's own asyncpg pool (role
``opshub_app``, no BYPASSRLS) with the tenant bound the way the application binds it
(``set_tenant`` / ``tenant_transaction``). Rows are seeded and read back through the owner
connection, which bypasses RLS, so each test can tell whether another tenant's data was seen or
touched.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from opshub.auth import crypto
from opshub.db.engine import DatabaseUrls, dsn, set_tenant, tenant_transaction
from opshub.db.sql import Connection
from tests.conftest import TenantHandle

TENANT_TABLES = ("users", "api_keys", "clients", "leads", "campaigns", "reports", "credentials")
CLIENT_REFERENCING_TABLES = ("leads", "campaigns")
# A free-text column per table that UPDATE tests overwrite and read back.
LABEL_COLUMN = {
    "users": "password_hash",
    "api_keys": "name",
    "clients": "name",
    "leads": "name",
    "campaigns": "name",
    "reports": "title",
    "credentials": "fingerprint",
}
_PROVIDERS = itertools.cycle(
    ["openai", "anthropic", "google_ads", "meta_ads", "linkedin_ads", "amazon_creators", "saleor"]
)
RLS_VIOLATION = "row-level security policy"
HIJACKED = "hijacked"


def row_values(table: str) -> dict[str, Any]:
    """Values for the required columns of a new row in ``table`` (``tenant_id`` excluded)."""
    token = uuid.uuid4().hex[:12]
    values: dict[str, dict[str, Any]] = {
        "users": {
            "email": f"user-{token}@example.com",
            "password_hash": f"hash-{token}",
            "role": "member",
        },
        "api_keys": {
            "name": f"key-{token}",
            "prefix": f"ohk_{token[:8]}",
            "key_hash": hashlib.sha256(token.encode()).digest(),
            "role": "member",
        },
        "clients": {"name": f"client-{token}"},
        "leads": {"name": f"lead-{token}"},
        "campaigns": {"name": f"campaign-{token}", "channel": "email"},
        "reports": {"title": f"report-{token}"},
        "credentials": {
            # Unique per (tenant, provider): successive rows take successive providers.
            "provider": next(_PROVIDERS),
            "fingerprint": f"fp-{token}",
            "last4": token[-4:],
            "backend": "vault",
        },
    }
    return values[table]


def insert_sql(table: str, columns: list[str]) -> Any:
    """SQLAlchemy INSERT for the owner connection (seeding)."""
    names = ", ".join(columns)
    params = ", ".join(f":{c}" for c in columns)
    return text(f"INSERT INTO {table} ({names}) VALUES ({params}) RETURNING id, tenant_id")  # noqa: S608


def app_insert(table: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """asyncpg INSERT (``$n`` placeholders) and its arguments, for the app's connection."""
    names = ", ".join(values)
    params = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    sql = f"INSERT INTO {table} ({names}) VALUES ({params}) RETURNING id, tenant_id"  # noqa: S608
    return sql, list(values.values())


@dataclass(frozen=True)
class SeedTenant:
    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class Seed:
    """Two tenants, and for each tenant table the id and label of one row per tenant."""

    a: SeedTenant
    b: SeedTenant
    rows: dict[tuple[str, uuid.UUID], uuid.UUID]
    labels: dict[uuid.UUID, str]

    def row(self, table: str, tenant: SeedTenant) -> uuid.UUID:
        return self.rows[(table, tenant.id)]


@pytest.fixture
async def seed(owner_engine: AsyncEngine) -> Seed:
    """Seeded with plain SQL (no password hashing), so the large matrix stays quick."""
    rows: dict[tuple[str, uuid.UUID], uuid.UUID] = {}
    labels: dict[uuid.UUID, str] = {}
    a = SeedTenant(uuid.uuid4(), f"Acme {uuid.uuid4().hex[:6]}")
    b = SeedTenant(uuid.uuid4(), f"Blue {uuid.uuid4().hex[:6]}")
    async with owner_engine.begin() as conn:
        for tenant in (a, b):
            await conn.execute(
                text("INSERT INTO tenants (id, name) VALUES (:id, :name)"),
                {"id": tenant.id, "name": tenant.name},
            )
            for table in TENANT_TABLES:
                values = {"tenant_id": tenant.id, **row_values(table)}
                row = (await conn.execute(insert_sql(table, list(values)), values)).one()
                rows[(table, tenant.id)] = row.id
                labels[row.id] = values[LABEL_COLUMN[table]]
    return Seed(a, b, rows, labels)


@pytest.fixture
async def app_conn(app_pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """A connection of the application's pool with no tenant bound (transactions are the test's)."""
    async with app_pool.acquire() as conn:
        yield conn


async def owner_label(owner_engine: AsyncEngine, table: str, row_id: uuid.UUID) -> str | None:
    """The row's label as the owner sees it, or None when the row does not exist."""
    column = LABEL_COLUMN[table]
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(
                text(f"SELECT {column} FROM {table} WHERE id = :id"),  # noqa: S608
                {"id": row_id},
            )
        ).scalar_one_or_none()


async def owner_count(owner_engine: AsyncEngine, table: str, ids: list[uuid.UUID]) -> int:
    async with owner_engine.connect() as conn:
        return (
            await conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE id = ANY(:ids)"),  # noqa: S608
                {"ids": ids},
            )
        ).scalar_one()


tables = pytest.mark.parametrize("table", TENANT_TABLES)


# --- No tenant bound: the app role sees and touches nothing. --------------------------------


@tables
async def test_without_tenant_select_returns_no_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    seeded = [seed.row(table, seed.a), seed.row(table, seed.b)]
    assert await owner_count(owner_engine, table, seeded) == 2
    async with app_pool.acquire() as conn, conn.transaction():
        count = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
    assert count == 0


@tables
async def test_without_tenant_insert_is_rejected(table: str, app_conn: Connection) -> None:
    sql, args = app_insert(table, row_values(table))
    with pytest.raises(
        (asyncpg.InsufficientPrivilegeError, asyncpg.NotNullViolationError),
        match=f"{RLS_VIOLATION}|null value in column",
    ):
        async with app_conn.transaction():
            await app_conn.execute(sql, *args)


@tables
async def test_without_tenant_insert_naming_a_tenant_is_rejected(
    table: str, seed: Seed, app_conn: Connection
) -> None:
    sql, args = app_insert(table, {"tenant_id": seed.a.id, **row_values(table)})
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=RLS_VIOLATION):
        async with app_conn.transaction():
            await app_conn.execute(sql, *args)


@tables
async def test_without_tenant_update_affects_no_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    targets = [seed.row(table, seed.a), seed.row(table, seed.b)]
    async with app_pool.acquire() as conn, conn.transaction():
        status = await conn.execute(
            f"UPDATE {table} SET {LABEL_COLUMN[table]} = $1 WHERE id = ANY($2)",  # noqa: S608
            HIJACKED,
            targets,
        )
    assert status == "UPDATE 0"
    for row_id in targets:
        assert await owner_label(owner_engine, table, row_id) == seed.labels[row_id]


@tables
async def test_without_tenant_delete_affects_no_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    targets = [seed.row(table, seed.a), seed.row(table, seed.b)]
    async with app_pool.acquire() as conn, conn.transaction():
        status = await conn.execute(
            f"DELETE FROM {table} WHERE id = ANY($1)",  # noqa: S608
            targets,
        )
    assert status == "DELETE 0"
    assert await owner_count(owner_engine, table, targets) == 2


# --- Tenant A bound: A's rows only. ----------------------------------------------------------


@tables
async def test_tenant_a_cannot_select_tenant_b_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool
) -> None:
    async with tenant_transaction(app_pool, seed.a.id) as conn:
        by_tenant = await conn.fetch(
            f"SELECT id FROM {table} WHERE tenant_id = $1",  # noqa: S608
            seed.b.id,
        )
        by_id = await conn.fetch(
            f"SELECT id FROM {table} WHERE id = $1",  # noqa: S608
            seed.row(table, seed.b),
        )
    assert by_tenant == []
    assert by_id == []


@tables
async def test_tenant_a_unfiltered_select_returns_only_its_own_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool
) -> None:
    async with tenant_transaction(app_pool, seed.a.id) as conn:
        rows = await conn.fetch(f"SELECT id, tenant_id FROM {table}")  # noqa: S608
    assert {row["tenant_id"] for row in rows} == {seed.a.id}
    ids = {row["id"] for row in rows}
    assert seed.row(table, seed.a) in ids
    assert seed.row(table, seed.b) not in ids


@tables
async def test_tenant_a_can_change_its_own_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    """Control for the denials below: the same statements do work on the tenant's own rows."""
    sql, args = app_insert(table, row_values(table))
    own = seed.row(table, seed.a)
    async with tenant_transaction(app_pool, seed.a.id) as conn:
        inserted = await conn.fetchrow(sql, *args)
        assert inserted is not None
        updated = await conn.execute(
            f"UPDATE {table} SET {LABEL_COLUMN[table]} = $1 WHERE id = $2",  # noqa: S608
            "renamed",
            own,
        )
        deleted = await conn.execute(
            f"DELETE FROM {table} WHERE id = $1",  # noqa: S608
            inserted["id"],
        )
    assert inserted["tenant_id"] == seed.a.id  # the default comes from the bound tenant
    assert updated == "UPDATE 1"
    assert deleted == "DELETE 1"
    assert await owner_label(owner_engine, table, own) == "renamed"


@tables
async def test_tenant_a_cannot_insert_rows_for_tenant_b(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    sql, args = app_insert(table, {"tenant_id": seed.b.id, **row_values(table)})
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=RLS_VIOLATION):
        async with tenant_transaction(app_pool, seed.a.id) as conn:
            await conn.execute(sql, *args)
    async with owner_engine.connect() as conn:
        count = (
            await conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :b"),  # noqa: S608
                {"b": seed.b.id},
            )
        ).scalar_one()
    assert count == 1  # only the seeded row


@tables
async def test_tenant_a_cannot_update_tenant_b_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    victim = seed.row(table, seed.b)
    async with tenant_transaction(app_pool, seed.a.id) as conn:
        status = await conn.execute(
            f"UPDATE {table} SET {LABEL_COLUMN[table]} = $1 WHERE tenant_id = $2",  # noqa: S608
            HIJACKED,
            seed.b.id,
        )
    assert status == "UPDATE 0"
    assert await owner_label(owner_engine, table, victim) == seed.labels[victim]


@tables
async def test_tenant_a_cannot_delete_tenant_b_rows(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    victim = seed.row(table, seed.b)
    async with tenant_transaction(app_pool, seed.a.id) as conn:
        status = await conn.execute(
            f"DELETE FROM {table} WHERE id = $1",  # noqa: S608
            victim,
        )
    assert status == "DELETE 0"
    assert await owner_label(owner_engine, table, victim) == seed.labels[victim]


@tables
async def test_tenant_a_cannot_move_its_rows_to_tenant_b(
    table: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    own = seed.row(table, seed.a)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=RLS_VIOLATION):
        async with tenant_transaction(app_pool, seed.a.id) as conn:
            await conn.execute(
                f"UPDATE {table} SET tenant_id = $1 WHERE id = $2",  # noqa: S608
                seed.b.id,
                own,
            )
    async with owner_engine.connect() as conn:
        tenant_id = (
            await conn.execute(
                text(f"SELECT tenant_id FROM {table} WHERE id = :id"),  # noqa: S608
                {"id": own},
            )
        ).scalar_one()
    assert tenant_id == seed.a.id


async def test_tenant_binding_does_not_outlive_its_transaction(
    seed: Seed, app_conn: Connection
) -> None:
    async with app_conn.transaction():
        await set_tenant(app_conn, seed.a.id)
        during = await app_conn.fetchval("SELECT count(*) FROM leads")
    async with app_conn.transaction():
        after = await app_conn.fetchval("SELECT count(*) FROM leads")
    assert during >= 1
    assert after == 0


# --- The tenants table. -------------------------------------------------------------------------


async def test_tenant_a_sees_only_its_own_tenant_row(seed: Seed, app_pool: asyncpg.Pool) -> None:
    async with tenant_transaction(app_pool, seed.a.id) as conn:
        ids = [row["id"] for row in await conn.fetch("SELECT id FROM tenants")]
        b_by_id = await conn.fetch("SELECT id FROM tenants WHERE id = $1", seed.b.id)
    assert ids == [seed.a.id]
    assert b_by_id == []


async def test_without_tenant_no_tenant_row_is_visible(
    seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tenants"))).scalar_one() >= 2
    async with app_pool.acquire() as conn, conn.transaction():
        count = await conn.fetchval("SELECT count(*) FROM tenants")
    assert count == 0


@pytest.mark.parametrize(
    ("statement", "takes_tenant"),
    [
        ("INSERT INTO tenants (name) VALUES ('intruder')", False),
        ("UPDATE tenants SET name = 'hijacked' WHERE id = $1", True),
        ("DELETE FROM tenants WHERE id = $1", True),
    ],
    ids=["insert", "update", "delete"],
)
async def test_app_role_cannot_write_the_tenants_table(
    statement: str,
    takes_tenant: bool,
    seed: Seed,
    app_pool: asyncpg.Pool,
    owner_engine: AsyncEngine,
) -> None:
    args = [seed.a.id] if takes_tenant else []
    with pytest.raises(
        asyncpg.InsufficientPrivilegeError, match="permission denied for table tenants"
    ):
        async with tenant_transaction(app_pool, seed.a.id) as conn:
            await conn.execute(statement, *args)
    async with owner_engine.connect() as conn:
        name = (
            await conn.execute(text("SELECT name FROM tenants WHERE id = :a"), {"a": seed.a.id})
        ).scalar_one()
    assert name == seed.a.name


# --- The app role cannot switch RLS off or become someone else. ----------------------------------


async def test_row_security_off_does_not_reveal_other_tenants(
    seed: Seed, app_pool: asyncpg.Pool
) -> None:
    # For a role without BYPASSRLS, row_security = off makes any RLS-filtered query an error.
    with pytest.raises(
        asyncpg.InsufficientPrivilegeError,
        match="would be affected by row-level security policy",
    ):
        async with tenant_transaction(app_pool, seed.a.id) as conn:
            await conn.execute("SET LOCAL row_security = off")
            await conn.fetch("SELECT id FROM leads WHERE tenant_id = $1", seed.b.id)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("ALTER TABLE leads DISABLE ROW LEVEL SECURITY", "must be owner of table leads"),
        ("ALTER TABLE leads NO FORCE ROW LEVEL SECURITY", "must be owner of table leads"),
        ("DROP POLICY tenant_isolation ON leads", "must be owner of (table|relation) leads"),
        (
            "CREATE POLICY open_door ON leads USING (true)",
            "must be owner of (table|relation) leads",
        ),
        ("SET ROLE postgres", 'permission denied to set role "postgres"'),
        ("SET SESSION AUTHORIZATION postgres", "permission denied to set session authorization"),
        ("ALTER ROLE opshub_app BYPASSRLS", "permission denied"),
    ],
    ids=[
        "disable-rls",
        "no-force-rls",
        "drop-policy",
        "add-permissive-policy",
        "set-role",
        "set-session-authorization",
        "grant-self-bypassrls",
    ],
)
async def test_app_role_cannot_escape_row_level_security(
    statement: str, message: str, seed: Seed, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=message):
        async with tenant_transaction(app_pool, seed.a.id) as conn:
            await conn.execute(statement)
    async with owner_engine.connect() as conn:
        state = (
            await conn.execute(
                text(
                    "SELECT c.relrowsecurity, c.relforcerowsecurity,"
                    " (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,"
                    " (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'opshub_app') AS bypass"
                    " FROM pg_class c WHERE c.oid = 'leads'::regclass"
                )
            )
        ).one()
    assert tuple(state) == (True, True, 1, False)


async def test_app_connection_is_not_privileged(app_pool: asyncpg.Pool) -> None:
    async with app_pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
    assert row is not None
    assert tuple(row) == ("opshub_app", False, False)


# --- Cross-tenant references. --------------------------------------------------------------------


@pytest.mark.parametrize("table", CLIENT_REFERENCING_TABLES)
async def test_tenant_a_row_cannot_reference_tenant_b_client(
    table: str, seed: Seed, app_pool: asyncpg.Pool
) -> None:
    sql, args = app_insert(table, {**row_values(table), "client_id": seed.row("clients", seed.b)})
    with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"fk_{table}_client"):
        async with tenant_transaction(app_pool, seed.a.id) as conn:
            await conn.execute(sql, *args)


@pytest.mark.parametrize("table", CLIENT_REFERENCING_TABLES)
async def test_tenant_a_row_cannot_be_repointed_at_tenant_b_client(
    table: str, seed: Seed, app_pool: asyncpg.Pool
) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError, match=f"fk_{table}_client"):
        async with tenant_transaction(app_pool, seed.a.id) as conn:
            await conn.execute(
                f"UPDATE {table} SET client_id = $1 WHERE id = $2",  # noqa: S608
                seed.row("clients", seed.b),
                seed.row(table, seed.a),
            )


@pytest.mark.parametrize("table", CLIENT_REFERENCING_TABLES)
async def test_tenant_a_row_can_reference_its_own_client(
    table: str, seed: Seed, app_pool: asyncpg.Pool
) -> None:
    sql, args = app_insert(table, {**row_values(table), "client_id": seed.row("clients", seed.a)})
    async with tenant_transaction(app_pool, seed.a.id) as conn:
        row = await conn.fetchrow(sql, *args)
    assert row is not None
    assert row["tenant_id"] == seed.a.id


# --- SECURITY DEFINER authentication lookups. ----------------------------------------------------

API_KEY_PRINCIPAL = "SELECT key_id, tenant_id, role FROM opshub_api_key_principal($1)"


async def test_api_key_principal_resolves_a_live_key_without_a_tenant(
    tenant_a: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    async with app_pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(API_KEY_PRINCIPAL, crypto.hash_api_key(tenant_a.api_key))
    assert [(row["tenant_id"], row["role"]) for row in rows] == [(tenant_a.id, "owner")]


async def test_api_key_principal_ignores_a_revoked_key(
    tenant_a: TenantHandle, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    key_hash = crypto.hash_api_key(tenant_a.api_key)
    async with owner_engine.begin() as conn:
        revoked = await conn.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE key_hash = :h"), {"h": key_hash}
        )
    assert revoked.rowcount == 1
    async with app_pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(API_KEY_PRINCIPAL, key_hash)
    assert rows == []


async def test_api_key_principal_returns_nothing_for_an_unknown_key(
    tenant_a: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    async with app_pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(API_KEY_PRINCIPAL, crypto.hash_api_key(tenant_a.api_key + "x"))
    assert rows == []


async def test_user_principal_ignores_a_disabled_user(
    tenant_a: TenantHandle, app_pool: asyncpg.Pool, owner_engine: AsyncEngine
) -> None:
    async with owner_engine.begin() as conn:
        user_id = (
            await conn.execute(
                text("UPDATE users SET disabled_at = now() WHERE email = :e RETURNING id"),
                {"e": tenant_a.email},
            )
        ).scalar_one()
    async with app_pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT * FROM opshub_user_principal($1)", user_id)
    assert rows == []


async def test_login_candidate_returns_only_the_matching_user(
    tenant_a: TenantHandle, tenant_b: TenantHandle, urls: DatabaseUrls
) -> None:
    conn = await asyncpg.connect(dsn(urls.login))
    try:
        rows = await conn.fetch(
            "SELECT tenant_id, role FROM opshub_login_candidate($1)",
            tenant_a.email.upper(),
        )
    finally:
        await conn.close()
    assert [tuple(row) for row in rows] == [(tenant_a.id, "owner")]
    assert tenant_b.id not in {row["tenant_id"] for row in rows}


async def test_the_app_role_cannot_read_password_hashes_through_the_login_lookup(
    tenant_a: TenantHandle, app_pool: asyncpg.Pool
) -> None:
    async with app_pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT password_hash FROM opshub_login_candidate($1)", tenant_a.email)


async def test_the_login_role_can_read_no_tenant_data(urls: DatabaseUrls) -> None:
    conn = await asyncpg.connect(dsn(urls.login))
    try:
        for table in ("users", "api_keys", "credentials", "tasks"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {table} LIMIT 1")  # noqa: S608 - fixed names
    finally:
        await conn.close()
