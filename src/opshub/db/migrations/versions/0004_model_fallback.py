"""A tenant's fallback model, used when its provider is down.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "tenant_model_fallbacks",
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
            server_default=sa.text(TENANT_SETTING),
        ),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "provider IN ('openai', 'anthropic', 'openai_compatible')", name="provider"
        ),
    )
    op.execute("ALTER TABLE tenant_model_fallbacks ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenant_model_fallbacks FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON tenant_model_fallbacks "
        f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_model_fallbacks TO opshub_tenant")


def downgrade() -> None:
    op.drop_table("tenant_model_fallbacks")
