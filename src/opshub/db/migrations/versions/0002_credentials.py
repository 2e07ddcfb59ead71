"""BYOK credentials: metadata, encrypted secrets (embedded backend) and wrapped tenant data keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
PROVIDERS = (
    "('openai', 'anthropic', 'openai_compatible', 'google_ads', 'meta_ads', 'linkedin_ads', "
    "'amazon_creators', 'saleor')"
)
HEALTH = "('unchecked', 'healthy', 'invalid', 'rate_limited', 'unreachable')"


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column(
            "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            server_default=sa.text(TENANT_SETTING),
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("label", sa.Text),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("last4", sa.Text, nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", sa.Text, nullable=False, server_default="unchecked"),
        sa.Column("status_detail", sa.Text),
        sa.Column("checked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("tenant_id", "provider", name="uq_credentials_tenant_id"),
        sa.CheckConstraint(f"provider IN {PROVIDERS}", name="provider"),
        sa.CheckConstraint(f"status IN {HEALTH}", name="status"),
        sa.CheckConstraint("backend IN ('database', 'vault')", name="backend"),
        sa.CheckConstraint("(backend = 'database') = (ciphertext IS NOT NULL)", name="ciphertext"),
    )
    op.create_table(
        "tenant_data_keys",
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
            server_default=sa.text(TENANT_SETTING),
        ),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("master_key_id", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    for table in ("credentials", "tenant_data_keys"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO opshub_tenant")


def downgrade() -> None:
    op.drop_table("tenant_data_keys")
    op.drop_table("credentials")
