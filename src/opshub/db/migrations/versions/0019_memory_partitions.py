"""Memories hash-partitioned by tenant: a tenant's HNSW build scans its partition, not the table.

Each tenant's partial HNSW index was built on the whole ``memories`` table, and a CONCURRENTLY
build scans the table twice whatever the tenant's size: the cost of a build grew with the table,
and the sum of them with table size times tenants. Now ``memories`` is ``PARTITION BY HASH (tenant_id)``
into ``PARTITIONS`` tables (schema ``memory_partitions``, out of the way of ``public``'s own), a
tenant's rows live in one of them, and its index is built on that partition alone (1/64 of the
rows). Queries name ``memories`` as before; the planner prunes to the tenant's partition.

The primary key becomes ``(tenant_id, id)`` (a partitioned table's unique keys hold its
partition key); the old ``UNIQUE (tenant_id, id)`` was that already. Row security is on the
parent, which is the only table the app role is granted; each partition carries the same forced
policy too, so a role given a partition directly is still bound to its tenant. The rows are
copied, and every index registered in ``memory_indexes`` is rebuilt under its name on its
tenant's partition (non-concurrently: the migration holds the table).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

PARTITIONS = 64
SCHEMA = "memory_partitions"
TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
POLICY = f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
COLUMNS = (
    "id, tenant_id, scope, scope_key, kind, content, subject, embedding, embedding_model, "
    "metadata, content_hash, importance, source_task_id, created_at, updated_at, "
    "last_recalled_at, recall_count, superseded_by, expires_at"
)
SECONDARY_INDEXES = (
    "ux_memories_live_content",
    "ix_memories_live",
    "ix_memories_subject",
    "ix_memories_search_text",
    "ix_memories_superseded_by",
)


def table(name: str, *, primary_key: str, unique: str, tail: str) -> str:
    """The memories table of 0007, under ``name``, with the given keys and trailing clause."""
    return f"""
CREATE TABLE {name} (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE,
    scope text NOT NULL CHECK (scope IN ('tenant', 'crew', 'agent', 'thread')),
    scope_key text NOT NULL DEFAULT '',
    kind text NOT NULL CHECK (kind IN ('fact', 'preference', 'outcome', 'insight')),
    content text NOT NULL CHECK (length(content) BETWEEN 1 AND 4000),
    subject text CHECK (length(subject) <= 200),
    embedding vector(384) NOT NULL,
    embedding_model text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{{}}',
    content_hash bytea NOT NULL,
    importance double precision NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
    source_task_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_recalled_at timestamptz,
    recall_count integer NOT NULL DEFAULT 0,
    superseded_by uuid,
    expires_at timestamptz,
    search_text tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    CHECK ((scope = 'tenant') = (scope_key = '')),
    PRIMARY KEY ({primary_key}){unique}
){tail}"""


# Created on the parent after the rows are in: one sorted build per partition, not 2M inserts.
INDEXES = """
CREATE UNIQUE INDEX ux_memories_live_content ON memories
    (tenant_id, scope, scope_key, content_hash) WHERE superseded_by IS NULL;
CREATE INDEX ix_memories_live ON memories (tenant_id, embedding_model, scope, scope_key)
    WHERE superseded_by IS NULL;
CREATE INDEX ix_memories_subject ON memories (tenant_id, scope, scope_key, subject)
    WHERE superseded_by IS NULL AND subject IS NOT NULL;
CREATE INDEX ix_memories_search_text ON memories USING gin (search_text);
CREATE INDEX ix_memories_superseded_by ON memories (tenant_id, superseded_by)
    WHERE superseded_by IS NOT NULL;
ALTER TABLE memories ADD FOREIGN KEY (tenant_id, superseded_by)
    REFERENCES memories (tenant_id, id) ON DELETE CASCADE
"""

# Every registered per-tenant index again, same name and predicate as opshub.memory.indexes
# builds, on the table that now holds the tenant's rows ({table} of the tenant: 'p' for its
# partition of the partitioned table, 'memories' after a downgrade).
REBUILD = """
DO $$
DECLARE
    x record;
    target text;
BEGIN
    FOR x IN SELECT tenant_id, embedding_model, index_name FROM memory_indexes LOOP
        SELECT {target} INTO target;
        EXECUTE format(
            'CREATE INDEX %I ON %s USING hnsw (embedding vector_cosine_ops) '
            'WITH (m = 16, ef_construction = 200) '
            'WHERE tenant_id = %L::uuid AND embedding_model = %L AND superseded_by IS NULL',
            x.index_name, target, x.tenant_id, x.embedding_model);
    END LOOP;
END $$
"""
PARTITION_OF_TENANT = f"""(
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE i.inhparent = 'memories'::regclass
       AND satisfies_hash_partition('memories'::regclass, {PARTITIONS},
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'remainder (\\d+)'))[1]::int,
           x.tenant_id))"""  # noqa: S608


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";\n") if statement.strip()]


def _secure(name: str) -> None:
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {name} {POLICY}")


def _set_aside_old_table() -> None:
    """Rename the table and free the names its successor takes (its HNSW indexes go with it)."""
    op.execute("ALTER TABLE memories RENAME TO memories_old")
    op.execute("ALTER TABLE memories_old RENAME CONSTRAINT memories_pkey TO memories_old_pkey")
    for index in SECONDARY_INDEXES:
        op.execute(f"DROP INDEX {index}")


def upgrade() -> None:
    _set_aside_old_table()
    op.execute(
        "ALTER TABLE memories_old RENAME CONSTRAINT memories_tenant_id_id_key "
        "TO memories_old_tenant_id_id_key"
    )
    op.execute(f"CREATE SCHEMA {SCHEMA}")
    op.execute(
        table(
            "memories",
            primary_key="tenant_id, id",
            unique="",
            tail=" PARTITION BY HASH (tenant_id)",
        )
    )
    for remainder in range(PARTITIONS):
        name = f"{SCHEMA}.memories_p{remainder:02d}"
        op.execute(
            f"CREATE TABLE {name} PARTITION OF memories "
            f"FOR VALUES WITH (modulus {PARTITIONS}, remainder {remainder})"
        )
        _secure(name)
    op.execute(f"INSERT INTO memories ({COLUMNS}) SELECT {COLUMNS} FROM memories_old")  # noqa: S608
    for statement in _statements(INDEXES):
        op.execute(statement)
    _secure("memories")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON memories TO opshub_tenant")
    op.execute("DROP TABLE memories_old")
    op.execute(REBUILD.replace("{target}", PARTITION_OF_TENANT))
    op.execute("ANALYZE memories")


def downgrade() -> None:
    _set_aside_old_table()
    op.execute(
        table(
            "memories",
            primary_key="id",
            unique=",\n    UNIQUE (tenant_id, id)",
            tail="",
        )
    )
    op.execute(f"INSERT INTO memories ({COLUMNS}) SELECT {COLUMNS} FROM memories_old")  # noqa: S608
    for statement in _statements(INDEXES):
        op.execute(statement)
    _secure("memories")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON memories TO opshub_tenant")
    op.execute("DROP TABLE memories_old")  # its partitions and their indexes with it
    op.execute(f"DROP SCHEMA {SCHEMA}")
    op.execute(REBUILD.replace("{target}", "'memories'"))
    op.execute("ANALYZE memories")
