"""Long-term memory: memories (pgvector + full text) and the per-tenant HNSW index registry.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
TENANT_ID = (
    f"tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE"
)
TABLES = ("memories", "memory_indexes")

# No HNSW index spans tenants: a tenant filter applied after a shared index picks its candidates
# loses recall (pgvector 0.6 has no iterative scans). A tenant below the threshold is searched
# exactly through ix_memories_live; above it, through its own partial HNSW index, built
# CONCURRENTLY by opshub.memory.indexes and recorded in memory_indexes.
UPGRADE = f"""
ALTER TABLE tenants ADD COLUMN memory_embedding_model text NOT NULL
    DEFAULT 'local/all-MiniLM-L6-v2';
-- NULL: the platform's default (OPSHUB_MEMORY_EXTRACTION).
ALTER TABLE tenants ADD COLUMN memory_extraction boolean;

CREATE TABLE memories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    {TENANT_ID},
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
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, superseded_by) REFERENCES memories (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX ux_memories_live_content ON memories
    (tenant_id, scope, scope_key, content_hash) WHERE superseded_by IS NULL;
CREATE INDEX ix_memories_live ON memories (tenant_id, embedding_model, scope, scope_key)
    WHERE superseded_by IS NULL;
CREATE INDEX ix_memories_subject ON memories (tenant_id, scope, scope_key, subject)
    WHERE superseded_by IS NULL AND subject IS NOT NULL;
CREATE INDEX ix_memories_search_text ON memories USING gin (search_text);
-- The superseded_by foreign key is checked on every delete: without this, erasing a tenant's
-- memories scans the table once per row.
CREATE INDEX ix_memories_superseded_by ON memories (tenant_id, superseded_by)
    WHERE superseded_by IS NOT NULL;

CREATE TABLE memory_indexes (
    {TENANT_ID},
    embedding_model text NOT NULL,
    index_name text NOT NULL UNIQUE,
    rows_at_build integer NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, embedding_model)
);
"""

GRANTS = """
GRANT SELECT, INSERT, UPDATE, DELETE ON memories TO opshub_tenant;
GRANT SELECT ON memory_indexes TO opshub_tenant;
GRANT UPDATE (memory_embedding_model, memory_extraction) ON tenants TO opshub_tenant;
"""


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";\n") if statement.strip()]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
        )
    for statement in _statements(GRANTS):
        op.execute(statement)


def downgrade() -> None:
    # The per-tenant partial indexes go with the table.
    op.execute("DROP TABLE memory_indexes, memories")
    op.execute(
        "ALTER TABLE tenants DROP COLUMN memory_extraction, DROP COLUMN memory_embedding_model"
    )
