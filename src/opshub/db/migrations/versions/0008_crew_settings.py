"""Per-tenant crew settings: the model a tenant picks for a crew.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"

UPGRADE = f"""
CREATE TABLE crew_settings (
    tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE,
    crew text NOT NULL,
    provider text NOT NULL
        CHECK (provider IN ('openai', 'anthropic', 'openai_compatible')),
    model text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, crew)
);
ALTER TABLE crew_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE crew_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crew_settings
    USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING});
GRANT SELECT, INSERT, UPDATE, DELETE ON crew_settings TO opshub_tenant;
"""


def upgrade() -> None:
    for statement in UPGRADE.split(";\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE crew_settings")
