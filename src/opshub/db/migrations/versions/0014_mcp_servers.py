"""MCP servers a tenant registers for its crews: URL, tools, crews, and the sealed auth secret.

The secret goes through the credential store under the server's own name (Vault:
``secret/tenants/<tenant>/mcp-servers/<name>``; without Vault, ciphertext in this row).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
TENANT_ID = (
    f"tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE"
)

UPGRADE = [
    f"""CREATE TABLE mcp_servers (
        {TENANT_ID},
        name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{{0,62}}$'),
        url text NOT NULL,
        -- NULL: every tool the server lists.
        tools text[],
        crews text[] NOT NULL,
        side_effecting_tools text[] NOT NULL DEFAULT '{{}}',
        -- NULL: no secret. The store's version; Vault keeps the secret, the database store
        -- keeps its ciphertext here.
        secret_version integer,
        secret_ciphertext bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, name)
    )""",
    "ALTER TABLE mcp_servers ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE mcp_servers FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON mcp_servers "
    f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON mcp_servers TO opshub_tenant",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE mcp_servers")
