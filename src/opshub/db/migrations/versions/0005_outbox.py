"""Transactional outbox of domain events, relayed to the Redis Stream ``opshub.events``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            server_default=sa.text(TENANT_SETTING),
        ),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_outbox_undelivered", "outbox", ["id"], postgresql_where=sa.text("delivered_at IS NULL")
    )
    op.execute("ALTER TABLE outbox ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE outbox FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON outbox "
        f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
    )
    # Tenant requests only add events; the relay reads and marks them as the owner.
    op.execute("GRANT INSERT ON outbox TO opshub_tenant")
    op.execute(
        """
        CREATE FUNCTION opshub_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('opshub_outbox', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION opshub_outbox_notify()"
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.execute("DROP FUNCTION IF EXISTS opshub_outbox_notify()")
