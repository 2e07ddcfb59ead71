"""Model usage ledger (tokens, cost, who pays) and monthly platform-spend budgets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"


def _tenant_id(primary_key: bool = False) -> sa.Column[object]:
    return sa.Column(
        "tenant_id",
        UUID(as_uuid=True),
        sa.ForeignKey("tenants.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
        server_default=sa.text(TENANT_SETTING),
    )


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column(
            "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
        ),
        _tenant_id(),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("task_id", UUID(as_uuid=True)),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Numeric(14, 6), nullable=False),
        sa.Column("billed_to", sa.Text, nullable=False),
        # model_call: a call's tokens and their price; run_fee: the platform's fee for a run on
        # the tenant's own key (BYOK), billable although the model cost is the tenant's.
        sa.Column("kind", sa.Text, nullable=False, server_default="model_call"),
        sa.CheckConstraint("billed_to IN ('byok', 'platform')", name="billed_to"),
        sa.CheckConstraint("kind IN ('model_call', 'run_fee')", name="kind"),
    )
    op.create_index(
        "ix_usage_records_tenant_month", "usage_records", ["tenant_id", "billed_to", "created_at"]
    )
    op.create_table(
        "tenant_budgets",
        _tenant_id(primary_key=True),
        sa.Column("monthly_platform_usd", sa.Numeric(12, 2), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("monthly_platform_usd >= 0", name="non_negative"),
    )
    for table in ("usage_records", "tenant_budgets"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
        )
    # The ledger is append-only for the application.
    op.execute("GRANT SELECT, INSERT ON usage_records TO opshub_tenant")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_budgets TO opshub_tenant")


def downgrade() -> None:
    op.drop_table("tenant_budgets")
    op.drop_table("usage_records")
