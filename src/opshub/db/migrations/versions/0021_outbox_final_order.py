"""Outbox: a tenant's events are read in the order they became final, (txid, id), not by id alone.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before 0016 have no txid: they were final before any of today's transactions.
    op.execute(
        "CREATE INDEX ix_outbox_tenant_final_order "
        "ON outbox (tenant_id, (coalesce(txid, '0'::xid8)), id)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_outbox_tenant_final_order")
