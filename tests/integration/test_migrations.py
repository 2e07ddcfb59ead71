"""Alembic migrations and app-role provisioning, each run against a database of its own.

Alembic's environment runs its own event loop, so ``upgrade``/``downgrade`` go through
``asyncio.to_thread``; ``migrate`` is async and does that itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from opshub.db.engine import DatabaseUrls, create_engine
from opshub.db.migrate import (
    MIGRATIONS_DIR,
    DatabaseMisconfiguredError,
    downgrade,
    migrate,
    upgrade,
)

TENANT_TABLES = (
    *("users", "api_keys", "clients", "leads", "campaigns", "reports"),
    *("credentials", "tenant_data_keys", "usage_records", "tenant_budgets"),
    *("tenant_model_fallbacks", "outbox"),
    *("threads", "thread_messages", "schedules", "tasks", "task_events", "webhook_deliveries"),
    *("memories", "memory_indexes", "crew_settings"),
    *("actions", "action_policies", "action_audit"),
    "queue_turns",
    *("webhook_secrets", "webhook_attempts", "mcp_servers"),
    "console_sessions",
)
SCHEMA_TABLES = frozenset({"tenants", *TENANT_TABLES})
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
ALL_FUNCTIONS = frozenset(
    {
        "opshub_api_key_principal",
        "opshub_user_principal",
        "opshub_login_candidate",
        "opshub_outbox_notify",
        "opshub_tasks_notify",
        "opshub_action_audit_append_only",
        "opshub_actions_notify",
        "opshub_queue_turns_inserted",
        "opshub_queue_turns_deleted",
        "opshub_queue_turns_moved",
        "opshub_console_session",
        "opshub_tenant_events_notify",
    }
)
AUTH_FUNCTIONS = frozenset(
    {
        "opshub_api_key_principal",
        "opshub_user_principal",
        "opshub_login_candidate",
        "opshub_console_session",
    }
)


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[AsyncConnection]:
    engine: AsyncEngine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def query(url: str, sql: str, **params: Any) -> list[Any]:
    async with connect(url) as conn:
        return list((await conn.execute(text(sql), params)).all())


async def tables(url: str) -> set[str]:
    rows = await query(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'alembic_version'",
    )
    return {row.tablename for row in rows}


async def functions(url: str) -> set[str]:
    rows = await query(
        url,
        "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        " AND proname LIKE 'opshub%'",
    )
    return {row.proname for row in rows}


async def alembic_revision(url: str) -> list[str]:
    return [row.version_num for row in await query(url, "SELECT version_num FROM alembic_version")]


async def upgrade_to_head(urls: DatabaseUrls) -> None:
    await asyncio.to_thread(upgrade, urls.owner)


async def downgrade_to_base(urls: DatabaseUrls) -> None:
    await asyncio.to_thread(downgrade, urls.owner, "base")


# --- Upgrade on an empty database. ---------------------------------------------------------------


async def test_upgrade_on_empty_database_creates_every_table(fresh_database: DatabaseUrls) -> None:
    assert await tables(fresh_database.owner) == set()
    await upgrade_to_head(fresh_database)
    assert await tables(fresh_database.owner) == SCHEMA_TABLES
    assert await alembic_revision(fresh_database.owner) == [HEAD]


async def test_upgrade_installs_the_vector_extension(fresh_database: DatabaseUrls) -> None:
    await upgrade_to_head(fresh_database)
    rows = await query(
        fresh_database.owner, "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    )
    assert len(rows) == 1
    assert rows[0].extversion
    distance = await query(
        fresh_database.owner, "SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector AS d"
    )
    assert distance[0].d == pytest.approx(1.0)


async def test_upgrade_enables_and_forces_rls_on_every_tenant_table(
    fresh_database: DatabaseUrls,
) -> None:
    await upgrade_to_head(fresh_database)
    rows = await query(
        fresh_database.owner,
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace AND relname = ANY(:names)",
        names=sorted(SCHEMA_TABLES),
    )
    security = {row.relname: (row.relrowsecurity, row.relforcerowsecurity) for row in rows}
    assert security == dict.fromkeys(SCHEMA_TABLES, (True, True))


async def test_upgrade_creates_a_tenant_policy_on_every_tenant_table(
    fresh_database: DatabaseUrls,
) -> None:
    await upgrade_to_head(fresh_database)
    rows = await query(
        fresh_database.owner,
        "SELECT tablename, policyname, qual, with_check FROM pg_policies"
        " WHERE schemaname = 'public'",
    )
    by_table = {row.tablename: row for row in rows}
    assert set(by_table) == SCHEMA_TABLES
    assert len(rows) == len(SCHEMA_TABLES)
    for table in TENANT_TABLES:
        assert "app.tenant_id" in by_table[table].qual
        assert "app.tenant_id" in by_table[table].with_check
    assert "app.tenant_id" in by_table["tenants"].qual


async def test_every_table_with_a_tenant_column_is_isolated(fresh_database: DatabaseUrls) -> None:
    """The invariant itself, so a table added later without RLS fails here."""
    await upgrade_to_head(fresh_database)
    rows = await query(
        fresh_database.owner,
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
        " (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname"
        "  AND p.qual LIKE '%app.tenant_id%' AND p.with_check LIKE '%app.tenant_id%') AS policies"
        " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"
        " AND c.relkind IN ('r', 'p')",  # partitioned tables and their partitions too
    )
    assert {row.relname for row in rows} >= set(TENANT_TABLES)
    for row in rows:
        assert (row.relrowsecurity, row.relforcerowsecurity, row.policies) == (True, True, 1), row


async def test_upgrade_creates_the_auth_functions_as_security_definer(
    fresh_database: DatabaseUrls,
) -> None:
    await upgrade_to_head(fresh_database)
    rows = await query(
        fresh_database.owner,
        "SELECT proname, prosecdef, proconfig FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'opshub%'",
    )
    definers = [row for row in rows if row.prosecdef]
    # Only the auth lookups run with the owner's rights; nothing else may.
    assert {row.proname for row in definers} == AUTH_FUNCTIONS
    for row in definers:
        assert any(setting.startswith("search_path=") for setting in row.proconfig)


async def test_migrate_provisions_an_app_role_bound_by_rls(fresh_database: DatabaseUrls) -> None:
    await migrate(fresh_database)
    assert (await query(fresh_database.app, "SELECT current_user AS u"))[0].u == "opshub_app"
    role = (
        await query(
            fresh_database.owner,
            "SELECT rolsuper, rolbypassrls, rolcanlogin,"
            " pg_has_role('opshub_app', 'opshub_tenant', 'MEMBER') AS tenant_member"
            " FROM pg_roles WHERE rolname = 'opshub_app'",
        )
    )[0]
    assert tuple(role) == (False, False, True, True)


async def test_app_role_of_a_fresh_migration_sees_no_rows_without_a_tenant(
    fresh_database: DatabaseUrls,
) -> None:
    await migrate(fresh_database)
    async with connect(fresh_database.owner) as conn, conn.begin():
        await conn.execute(text("INSERT INTO tenants (name) VALUES ('Acme')"))
    assert (await query(fresh_database.owner, "SELECT count(*) AS n FROM tenants"))[0].n == 1
    assert (await query(fresh_database.app, "SELECT count(*) AS n FROM tenants"))[0].n == 0


# --- Downgrade and round trips. ------------------------------------------------------------------


async def test_downgrade_to_base_removes_tables_and_auth_functions(
    fresh_database: DatabaseUrls,
) -> None:
    await migrate(fresh_database)
    assert await functions(fresh_database.owner) == ALL_FUNCTIONS
    await downgrade_to_base(fresh_database)
    assert await tables(fresh_database.owner) == set()
    assert await functions(fresh_database.owner) == set()
    assert await alembic_revision(fresh_database.owner) == []
    extensions = await query(
        fresh_database.owner, "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
    )
    assert extensions == []


async def test_upgrade_after_downgrade_restores_the_schema(fresh_database: DatabaseUrls) -> None:
    await migrate(fresh_database)
    await downgrade_to_base(fresh_database)
    await migrate(fresh_database)
    assert await tables(fresh_database.owner) == SCHEMA_TABLES
    assert await functions(fresh_database.owner) == ALL_FUNCTIONS
    assert await alembic_revision(fresh_database.owner) == [HEAD]
    assert (await query(fresh_database.app, "SELECT current_user AS u"))[0].u == "opshub_app"


async def test_downgrade_with_data_present_then_upgrade_leaves_an_empty_schema(
    fresh_database: DatabaseUrls,
) -> None:
    await migrate(fresh_database)
    async with connect(fresh_database.owner) as conn, conn.begin():
        tenant_id = uuid.uuid4()
        await conn.execute(
            text("INSERT INTO tenants (id, name) VALUES (:t, 'Acme')"), {"t": tenant_id}
        )
        params = {"t": tenant_id}
        await conn.execute(
            text(
                "INSERT INTO users (tenant_id, email, password_hash, role)"
                " VALUES (:t, 'owner@acme.example.com', 'x', 'owner')"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO api_keys (tenant_id, name, prefix, key_hash, role)"
                " VALUES (:t, 'k', 'ohk_abcdefgh', sha256('k'::bytea), 'owner')"
            ),
            params,
        )
        client_id = (
            await conn.execute(
                text("INSERT INTO clients (tenant_id, name) VALUES (:t, 'Summit') RETURNING id"),
                params,
            )
        ).scalar_one()
        refs = {"t": tenant_id, "c": client_id}
        await conn.execute(
            text("INSERT INTO leads (tenant_id, client_id, name) VALUES (:t, :c, 'Jane')"), refs
        )
        await conn.execute(
            text(
                "INSERT INTO campaigns (tenant_id, client_id, name, channel)"
                " VALUES (:t, :c, 'Spring', 'email')"
            ),
            refs,
        )
        await conn.execute(
            text("INSERT INTO reports (tenant_id, title) VALUES (:t, 'Weekly')"), params
        )
        await conn.execute(
            text(
                "INSERT INTO credentials (tenant_id, provider, fingerprint, last4, backend)"
                " VALUES (:t, 'saleor', 'fp', 'abcd', 'vault')"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO tenant_data_keys (tenant_id, wrapped_key, master_key_id)"
                " VALUES (:t, 'wrapped'::bytea, 'k1')"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO usage_records (tenant_id, provider, model, input_tokens,"
                " output_tokens, cost_usd, billed_to)"
                " VALUES (:t, 'openai', 'gpt-4o', 1, 1, 0, 'byok')"
            ),
            params,
        )
        await conn.execute(
            text("INSERT INTO tenant_budgets (tenant_id, monthly_platform_usd) VALUES (:t, 10)"),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO tenant_model_fallbacks (tenant_id, provider, model)"
                " VALUES (:t, 'anthropic', 'claude-haiku-4-5')"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO outbox (tenant_id, event_type, data)"
                " VALUES (:t, 'tenant.created', '{}')"
            ),
            params,
        )
        await conn.execute(
            text(
                "WITH th AS (INSERT INTO threads (tenant_id) VALUES (:t) RETURNING id),"
                " s AS (INSERT INTO schedules (tenant_id, input, cron, timezone)"
                "   VALUES (:t, 'report', '0 9 * * MON', 'Europe/Berlin') RETURNING id),"
                " tk AS (INSERT INTO tasks (tenant_id, input, thread_id, schedule_id)"
                "   SELECT :t, 'hello', th.id, s.id FROM th, s RETURNING id, thread_id),"
                " m AS (INSERT INTO thread_messages (tenant_id, thread_id, role, content, task_id)"
                "   SELECT :t, thread_id, 'user', 'hello', id FROM tk),"
                " e AS (INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data)"
                "   SELECT :t, id, 1, 'task.started', now(), '{}' FROM tk),"
                " w AS (INSERT INTO webhook_deliveries (tenant_id, task_id, url, body)"
                "   SELECT :t, id, 'https://example.com/hook', '{}' FROM tk RETURNING id),"
                " wa AS (INSERT INTO webhook_attempts (tenant_id, delivery_id, status_code)"
                "   SELECT :t, id, 200 FROM w),"
                " ws AS (INSERT INTO webhook_secrets (tenant_id, secret, standard)"
                "   VALUES (:t, 'whsec_x', true)),"
                " ms AS (INSERT INTO mcp_servers (tenant_id, name, url, crews)"
                "   VALUES (:t, 'shop', 'https://mcp.example/mcp', '{ecommerce}')),"
                " a AS (INSERT INTO actions (tenant_id, task_id, tool, kind, payload, summary,"
                "   idempotency_key)"
                "   SELECT :t, id, 'saleor', 'saleor.order_note', '{}', 'Note', 'k' FROM tk"
                "   RETURNING id)"
                " INSERT INTO action_audit (tenant_id, action_id, actor, event)"
                " SELECT :t, id, 'policy', 'proposed' FROM a"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO memories (tenant_id, scope, kind, content, embedding,"
                " embedding_model, content_hash)"
                " VALUES (:t, 'tenant', 'fact', 'Acme likes email.', array_fill(0.1, ARRAY[384]),"
                " 'local/all-MiniLM-L6-v2', 'h'::bytea)"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO memory_indexes (tenant_id, embedding_model, index_name, rows_at_build)"
                " VALUES (:t, 'local/all-MiniLM-L6-v2', 'ix_memories_hnsw_x', 1000)"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO crew_settings (tenant_id, crew, provider, model)"
                " VALUES (:t, 'marketing', 'anthropic', 'claude-sonnet-4-5')"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO action_policies (tenant_id, kind, auto_approve, max_amount, currency)"
                " VALUES (:t, 'ads.budget_change', true, 50, 'USD')"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO console_sessions (tenant_id, user_id, token_hash, csrf_token,"
                " expires_at) SELECT :t, id, 'h'::bytea, 'c', now() FROM users WHERE tenant_id = :t"
            ),
            params,
        )
    for table in SCHEMA_TABLES:
        count = (await query(fresh_database.owner, f"SELECT count(*) AS n FROM {table}"))[0].n  # noqa: S608
        assert count == 1, table

    await downgrade_to_base(fresh_database)
    assert await tables(fresh_database.owner) == set()
    await migrate(fresh_database)

    assert await tables(fresh_database.owner) == SCHEMA_TABLES
    for table in SCHEMA_TABLES:
        count = (await query(fresh_database.owner, f"SELECT count(*) AS n FROM {table}"))[0].n  # noqa: S608
        assert count == 0, table


# --- migrate(): idempotence and refusals. --------------------------------------------------------


async def schema_snapshot(url: str) -> dict[str, Any]:
    columns = await query(
        url,
        "SELECT table_name, column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public'"
        " ORDER BY table_name, ordinal_position",
    )
    policies = await query(
        url, "SELECT tablename, policyname, qual, with_check FROM pg_policies ORDER BY 1, 2"
    )
    roles = await query(
        url,
        "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles"
        " WHERE rolname IN ('opshub_app', 'opshub_tenant') ORDER BY 1",
    )
    return {
        "revision": await alembic_revision(url),
        "columns": [tuple(row) for row in columns],
        "policies": [tuple(row) for row in policies],
        "functions": await functions(url),
        "roles": [tuple(row) for row in roles],
    }


async def test_migrate_twice_is_a_no_op(fresh_database: DatabaseUrls) -> None:
    await migrate(fresh_database)
    async with connect(fresh_database.owner) as conn, conn.begin():
        await conn.execute(text("INSERT INTO tenants (name) VALUES ('Acme')"))
    before = await schema_snapshot(fresh_database.owner)

    await migrate(fresh_database)

    assert await schema_snapshot(fresh_database.owner) == before
    assert (await query(fresh_database.owner, "SELECT count(*) AS n FROM tenants"))[0].n == 1
    assert (await query(fresh_database.app, "SELECT current_user AS u"))[0].u == "opshub_app"


async def test_migrate_refuses_an_app_url_that_uses_the_owner_role_before_changing_anything(
    fresh_database: DatabaseUrls,
) -> None:
    same_role = DatabaseUrls(owner=fresh_database.owner, app=fresh_database.owner)
    with pytest.raises(DatabaseMisconfiguredError, match="owner role"):
        await migrate(same_role)
    tenants = await query(fresh_database.owner, "SELECT to_regclass('public.tenants') AS found")
    assert tenants[0].found is None


async def test_migrate_refuses_an_app_role_with_bypassrls(
    fresh_database: DatabaseUrls,
) -> None:
    role = f"t_bypass_{uuid.uuid4().hex[:8]}"
    app_url = make_url(fresh_database.owner).set(username=role)
    urls = DatabaseUrls(owner=fresh_database.owner, app=app_url.render_as_string(False))
    async with connect(fresh_database.owner) as conn, conn.begin():
        await conn.execute(text(f"CREATE ROLE {role} LOGIN BYPASSRLS"))
    try:
        with pytest.raises(DatabaseMisconfiguredError, match="BYPASSRLS"):
            await migrate(urls)
        bypass = await query(
            fresh_database.owner, "SELECT rolbypassrls FROM pg_roles WHERE rolname = :r", r=role
        )
        assert bypass[0].rolbypassrls is True  # refused, not silently altered
    finally:
        async with connect(fresh_database.owner) as conn, conn.begin():
            await conn.execute(text(f"DROP ROLE {role}"))


async def test_a_webhook_secret_made_before_0013_keeps_signing_the_old_header(
    fresh_database: DatabaseUrls,
) -> None:
    """Receivers set up before Standard Webhooks keep their X-Opshub-Signature secret."""
    await asyncio.to_thread(upgrade, fresh_database.owner, "0012")
    async with connect(fresh_database.owner) as conn:
        tenant_id = (
            await conn.execute(
                text(
                    "INSERT INTO tenants (name, webhook_secret) VALUES ('Old', 'whsec_old') "
                    "RETURNING id"
                )
            )
        ).scalar_one()
        await conn.commit()
    await upgrade_to_head(fresh_database)
    rows = await query(
        fresh_database.owner,
        "SELECT tenant_id, secret, standard, expires_at FROM webhook_secrets",
    )
    assert [tuple(row) for row in rows] == [(tenant_id, "whsec_old", False, None)]
    await asyncio.to_thread(downgrade, fresh_database.owner, "0012")
    back = await query(fresh_database.owner, "SELECT webhook_secret FROM tenants")
    assert [row.webhook_secret for row in back] == ["whsec_old"]


MEMORY = (
    "INSERT INTO memories (id, tenant_id, scope, kind, content, embedding, embedding_model,"
    " content_hash, superseded_by) VALUES (:id, :t, 'tenant', 'fact', :content,"
    " array_fill(CAST(:x AS real), ARRAY[384])::vector, 'local/all-MiniLM-L6-v2', :hash,"
    " :superseded_by)"
)
MEMORIES = "SELECT id, tenant_id, superseded_by, content, embedding::text AS e FROM memories"
HNSW_TABLE = (
    "SELECT i.indrelid::regclass::text AS on_table FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ix_memories_hnsw_probe'"
)


async def test_0019_partitions_memories_keeping_rows_indexes_and_isolation(
    fresh_database: DatabaseUrls,
) -> None:
    """Memories stored before 0019 are all there after it (a superseded one still points at its
    successor), a tenant's registered index is rebuilt on the partition holding its rows, and the
    tenants' role reading ``memories`` sees its own rows only; the downgrade puts it all back."""
    owner = fresh_database.owner
    await asyncio.to_thread(upgrade, owner, "0018")
    a, b = uuid.uuid4(), uuid.uuid4()
    newer = uuid.uuid4()
    async with connect(owner) as conn, conn.begin():
        for tenant in (a, b):
            await conn.execute(
                text("INSERT INTO tenants (id, name) VALUES (:t, 'T')"), {"t": tenant}
            )
        memories = [
            (newer, a, "Acme wants email.", 0.1, None),
            (uuid.uuid4(), a, "Acme wants post.", 0.2, newer),
            (uuid.uuid4(), b, "Bakery wants calls.", 0.3, None),
        ]
        for id_, tenant, content, x, superseded_by in memories:
            await conn.execute(
                text(MEMORY),
                {"id": id_, "t": tenant, "content": content, "x": x,
                 "hash": content.encode(), "superseded_by": superseded_by},
            )  # fmt: skip
        await conn.execute(
            text(
                "CREATE INDEX ix_memories_hnsw_probe ON memories"
                " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200)"
                f" WHERE tenant_id = '{a}'::uuid AND embedding_model = 'local/all-MiniLM-L6-v2'"
                " AND superseded_by IS NULL"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO memory_indexes (tenant_id, embedding_model, index_name, rows_at_build)"
                " VALUES (:t, 'local/all-MiniLM-L6-v2', 'ix_memories_hnsw_probe', 1000)"
            ),
            {"t": a},
        )
    stored = sorted(tuple(row) for row in await query(owner, MEMORIES))
    assert await query(owner, HNSW_TABLE) == [("memories",)]

    await upgrade_to_head(fresh_database)

    assert sorted(tuple(row) for row in await query(owner, MEMORIES)) == stored
    holder = await query(
        owner,
        "SELECT DISTINCT tableoid::regclass::text AS part FROM memories WHERE tenant_id = :t",
        t=a,
    )
    assert len(holder) == 1
    assert holder[0].part.startswith("memory_partitions.memories_p")
    assert await query(owner, HNSW_TABLE) == [(holder[0].part,)]
    async with connect(owner) as conn, conn.begin():
        await conn.execute(text("SET LOCAL ROLE opshub_tenant"))
        await conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(a)})
        seen = (await conn.execute(text("SELECT tenant_id, content FROM memories"))).all()
        assert sorted(content for _, content in seen) == ["Acme wants email.", "Acme wants post."]
        assert {tenant for tenant, _ in seen} == {a}
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text(f"SELECT count(*) FROM {holder[0].part}"))  # noqa: S608

    await asyncio.to_thread(downgrade, owner, "0018")

    assert sorted(tuple(row) for row in await query(owner, MEMORIES)) == stored
    assert await query(owner, HNSW_TABLE) == [("memories",)]
    assert await query(owner, "SELECT to_regnamespace('memory_partitions') AS s") == [(None,)]
