"""Indexes for the dashboard panels: a tenant's runs by start time, and its failed runs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The agents panel reads today's runs and each crew's last failure on every page load.
    op.execute("CREATE INDEX ix_tasks_started ON tasks (tenant_id, started_at)")
    op.execute(
        "CREATE INDEX ix_tasks_failed ON tasks (tenant_id, finished_at DESC) "
        "WHERE status = 'failed'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_tasks_failed")
    op.execute("DROP INDEX ix_tasks_started")
