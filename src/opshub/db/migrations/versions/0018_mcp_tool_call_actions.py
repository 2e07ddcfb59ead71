"""Actions: a crew's call of a side-effecting tool on a tenant's MCP server (``mcp.tool_call``).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

KINDS = (
    "'saleor.product_create', 'saleor.stock_update', 'saleor.voucher_create', "
    "'saleor.order_note', 'ads.budget_change', 'ads.campaign_status'"
)
TABLES = ("actions", "action_policies")


def _kinds(kinds: str) -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_kind_check")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_kind_check CHECK (kind IN ({kinds}))"
        )


def upgrade() -> None:
    _kinds(f"{KINDS}, 'mcp.tool_call'")


def downgrade() -> None:
    # Recorded mcp.tool_call actions (and their audit) are kept: the check then refuses the
    # downgrade rather than erase them.
    op.execute("DELETE FROM action_policies WHERE kind = 'mcp.tool_call'")
    _kinds(KINDS)
