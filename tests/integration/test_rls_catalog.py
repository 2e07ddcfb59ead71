"""Tenant isolation on every table with a ``tenant_id`` column, found in the catalog.

``test_rls.py`` probes the first tables in depth; this matrix covers every tenant table there is,
so a table added tomorrow is probed the day it is added, without anyone listing it. For each
table one row per tenant is seeded from the catalog (required columns filled by type, the first
value a CHECK's ``IN`` list allows), then, as the app role (``SET ROLE opshub_app``: no BYPASSRLS)
with tenant A bound, SELECT, INSERT, UPDATE and DELETE reach for tenant B's rows. An operation
the role holds no privilege for must be refused outright. Everything runs in one transaction on
the owner's connection and is rolled back: the seeded rows (whose references are not real, so
foreign-key triggers are off while seeding) never reach the shared database or its workers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import pytest

APP_ROLE = "opshub_app"
RLS_VIOLATION = "row-level security policy"

TENANT_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name, c.oid
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1
"""

# A partitioned table's partitions are left out above: the app role reaches their rows through
# the table, under its policy. Reached directly they must refuse it, and bind anyone they don't.
PARTITIONS = """
SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
 WHERE c.relispartition AND c.relkind IN ('r', 'p')
 ORDER BY 1
"""

REQUIRED_COLUMNS = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, t.typtype,
       (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.atttypid
         ORDER BY e.enumsortorder LIMIT 1) AS first_label
  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
   AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
   AND a.attname <> 'tenant_id'
 ORDER BY a.attnum
"""

CHECKS = "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1 AND contype = 'c'"

# A literal per type for a required column; text and bytes get unique values (UNIQUE keys).
LITERALS: dict[str, Callable[[], str]] = {
    "uuid": lambda: "gen_random_uuid()",
    "text": lambda: f"'seed-{uuid.uuid4().hex[:10]}'",
    "character varying": lambda: f"'seed-{uuid.uuid4().hex[:10]}'",
    "boolean": lambda: "false",
    "integer": lambda: "1",
    "bigint": lambda: "1",
    "smallint": lambda: "1",
    "numeric": lambda: "1",
    "double precision": lambda: "1",
    "real": lambda: "1",
    "jsonb": lambda: "'{}'::jsonb",
    "json": lambda: "'{}'::json",
    "bytea": lambda: f"'\\x{uuid.uuid4().hex}'::bytea",
    "timestamp with time zone": lambda: "now()",
    "timestamp without time zone": lambda: "now()",
    "date": lambda: "current_date",
    "interval": lambda: "interval '1 hour'",
    "text[]": lambda: "'{}'::text[]",
    "uuid[]": lambda: "'{}'::uuid[]",
}


# Where a type's literal and a CHECK's first value do not make a valid row (checks across
# columns): the values to seed with, by table and column.
SEED_VALUES: dict[str, dict[str, str]] = {
    "public.credentials": {"backend": "'vault'"},
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    typtype: str
    first_label: str | None


def allowed_value(column: str, checks: list[str]) -> str | None:
    """The first value a CHECK's ``column IN (…)`` allows (PostgreSQL shows it as ``= ANY``)."""
    pattern = rf"\(?\b{re.escape(column)}\b\)?\s*=\s*ANY\s*\(\(?ARRAY\[\s*('[^']*')"
    for check in checks:
        if match := re.search(pattern, check):
            return match.group(1)
    return None


def literal(column: Column, checks: list[str]) -> str:
    if (allowed := allowed_value(column.name, checks)) is not None:
        return allowed
    if column.typtype == "e" and column.first_label is not None:
        return "'" + column.first_label.replace("'", "''") + "'"
    if vector := re.fullmatch(r"vector\((\d+)\)", column.type):
        return "'[" + ",".join(["0.1"] * int(vector.group(1))) + "]'"
    make = LITERALS.get(re.sub(r"\(.*\)", "", column.type))  # numeric(12,2) -> numeric
    if make is None:
        raise AssertionError(
            f"no seed value for a required {column.type} column {column.name!r}: "
            "add the type to LITERALS so the new table is covered"
        )
    return make()


@dataclass(frozen=True)
class Table:
    name: str
    oid: int
    columns: list[Column]
    checks: list[str]

    def insert_sql(self) -> str:
        """An INSERT of one row for the tenant given as ``$1``."""
        values = {c.name: literal(c, self.checks) for c in self.columns}
        values.update(SEED_VALUES.get(self.name, {}))
        names = ", ".join(["tenant_id", *(f'"{name}"' for name in values)])
        literals = ", ".join(["$1", *values.values()])
        return f"INSERT INTO {self.name} ({names}) VALUES ({literals})"  # noqa: S608


@dataclass(frozen=True)
class Probe:
    """The owner's connection inside one transaction, rolled back at the end."""

    conn: asyncpg.Connection
    tables: list[Table]
    a: uuid.UUID
    b: uuid.UUID

    async def as_app(self, tenant: uuid.UUID | None) -> None:
        await self.conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
        await self.conn.execute(
            "SELECT set_config('app.tenant_id', $1, true)", str(tenant) if tenant else ""
        )

    async def as_owner(self) -> None:
        await self.conn.execute("RESET ROLE")

    async def attempt(self, sql: str, *args: object) -> str | asyncpg.PostgresError:
        """The statement's status, or the error it raised (undone to a savepoint)."""
        try:
            async with self.conn.transaction():
                status: str = await self.conn.execute(sql, *args)
                return status
        except asyncpg.PostgresError as error:
            return error

    async def count(self, table: Table, tenant: uuid.UUID) -> int:
        """Rows of ``tenant`` as the owner sees them (no RLS)."""
        await self.as_owner()
        n: int = await self.conn.fetchval(
            f"SELECT count(*) FROM {table.name} WHERE tenant_id = $1",  # noqa: S608
            tenant,
        )
        return n

    async def granted(self, table: Table, privilege: str) -> bool:
        await self.as_owner()
        allowed: bool = await self.conn.fetchval(
            "SELECT has_table_privilege($1, $2::oid, $3)", APP_ROLE, table.oid, privilege
        )
        return allowed

    async def updatable_column(self, table: Table) -> str | None:
        await self.as_owner()
        column: str | None = await self.conn.fetchval(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' AND attidentity = ''"
            " AND has_column_privilege($2, $1, attname, 'UPDATE') ORDER BY attnum LIMIT 1",
            table.oid,
            APP_ROLE,
        )
        return column


@pytest.fixture
async def probe(owner_pool: asyncpg.Pool) -> AsyncIterator[Probe]:
    async with owner_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            tables = []
            for row in await conn.fetch(TENANT_TABLES):
                columns = [Column(**r) for r in await conn.fetch(REQUIRED_COLUMNS, row["oid"])]
                checks = [r[0] for r in await conn.fetch(CHECKS, row["oid"])]
                tables.append(Table(row["name"], row["oid"], columns, checks))
            a, b = uuid.uuid4(), uuid.uuid4()
            for tenant in (a, b):
                await conn.execute(
                    "INSERT INTO tenants (id, name) VALUES ($1, $2)", tenant, f"RLS {tenant}"
                )
            # Seed rows reference parents that do not exist: foreign-key (and other) triggers
            # are off for the seeding only.
            await conn.execute("SET LOCAL session_replication_role = replica")
            unseeded = []
            for table in tables:
                for tenant in (a, b):
                    try:
                        async with conn.transaction():
                            await conn.execute(table.insert_sql(), tenant)
                    except asyncpg.PostgresError as error:
                        unseeded.append(f"{table.name}: {error}")
            assert unseeded == [], "add these tables' values to SEED_VALUES"
            await conn.execute("SET LOCAL session_replication_role = origin")
            yield Probe(conn, tables, a, b)
        finally:
            await transaction.rollback()


def refused(result: str | asyncpg.PostgresError, message: str) -> bool:
    return isinstance(result, asyncpg.InsufficientPrivilegeError) and bool(
        re.search(message, str(result))
    )


async def test_every_tenant_table_is_found_and_seeded(probe: Probe) -> None:
    names = {table.name for table in probe.tables}
    # A sample across the migrations: the catalog query is not vacuous.
    assert {"public.leads", "public.tasks", "public.actions", "public.memories"} <= names
    assert len(names) >= 20
    for table in probe.tables:
        assert await probe.count(table, probe.b) == 1, table.name


async def test_the_probes_run_as_the_unprivileged_app_role(probe: Probe) -> None:
    await probe.as_app(probe.a)
    row = await probe.conn.fetchrow(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    assert row is not None
    assert tuple(row) == (APP_ROLE, False, False)


async def test_select_sees_only_the_bound_tenants_rows_on_every_table(probe: Probe) -> None:
    leaks = []
    for table in probe.tables:
        if not await probe.granted(table, "SELECT"):
            await probe.as_app(probe.a)
            result = await probe.attempt(f"SELECT 1 FROM {table.name}")  # noqa: S608
            if not refused(result, "permission denied"):
                leaks.append(f"{table.name}: SELECT without the privilege gave {result!r}")
            continue
        await probe.as_app(probe.a)
        tenants = {
            r[0]
            for r in await probe.conn.fetch(f"SELECT tenant_id FROM {table.name}")  # noqa: S608
        }
        if tenants != {probe.a}:  # its own row, and no other tenant's
            leaks.append(f"{table.name}: tenant A sees rows of {tenants}")
        await probe.as_app(None)
        unbound = await probe.conn.fetchval(f"SELECT count(*) FROM {table.name}")  # noqa: S608
        if unbound:
            leaks.append(f"{table.name}: {unbound} rows visible with no tenant bound")
    assert leaks == []


async def test_insert_for_another_tenant_is_refused_on_every_table(probe: Probe) -> None:
    leaks = []
    for table in probe.tables:
        expected = RLS_VIOLATION if await probe.granted(table, "INSERT") else "permission denied"
        await probe.as_app(probe.a)
        result = await probe.attempt(table.insert_sql(), probe.b)
        if not refused(result, expected):
            leaks.append(f"{table.name}: INSERT for tenant B gave {result!r}")
        if await probe.count(table, probe.b) != 1:
            leaks.append(f"{table.name}: tenant B's rows changed")
    assert leaks == []


async def test_update_reaches_no_other_tenants_row_on_every_table(probe: Probe) -> None:
    leaks = []
    for table in probe.tables:
        column = await probe.updatable_column(table)
        await probe.as_app(probe.a)
        if column is None:
            result = await probe.attempt(f"UPDATE {table.name} SET tenant_id = tenant_id")  # noqa: S608
            if not refused(result, "permission denied"):
                leaks.append(f"{table.name}: UPDATE without the privilege gave {result!r}")
            continue
        result = await probe.attempt(
            f'UPDATE {table.name} SET "{column}" = "{column}" WHERE tenant_id = $1',  # noqa: S608
            probe.b,
        )
        if result != "UPDATE 0":
            leaks.append(f"{table.name}: UPDATE of tenant B's rows gave {result!r}")
    assert leaks == []


async def test_delete_reaches_no_other_tenants_row_on_every_table(probe: Probe) -> None:
    leaks = []
    for table in probe.tables:
        granted = await probe.granted(table, "DELETE")
        await probe.as_app(probe.a)
        result = await probe.attempt(
            f"DELETE FROM {table.name} WHERE tenant_id = $1",  # noqa: S608
            probe.b,
        )
        if granted and result != "DELETE 0":
            leaks.append(f"{table.name}: DELETE of tenant B's rows gave {result!r}")
        if not granted and not refused(result, "permission denied"):
            leaks.append(f"{table.name}: DELETE without the privilege gave {result!r}")
        if await probe.count(table, probe.b) != 1:
            leaks.append(f"{table.name}: tenant B's rows were deleted")
    assert leaks == []


async def test_partitions_refuse_the_app_role_and_are_bound_like_their_table(probe: Probe) -> None:
    await probe.as_owner()
    partitions = await probe.conn.fetch(PARTITIONS)
    assert any(p["name"].startswith("memory_partitions.memories_p") for p in partitions)
    leaks = []
    for partition in partitions:
        if not (partition["relrowsecurity"] and partition["relforcerowsecurity"]):
            leaks.append(f"{partition['name']}: row security not forced")
        await probe.as_app(probe.a)
        result = await probe.attempt(f"SELECT tenant_id FROM {partition['name']}")  # noqa: S608
        if not refused(result, "permission denied"):
            leaks.append(f"{partition['name']}: the app role read it directly: {result!r}")
        await probe.as_owner()
    assert leaks == []
