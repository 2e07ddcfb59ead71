"""A run's memories are written after its task ends: the task carries the write-back still owed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cleared in the transaction that stores the memories; while set, the task's lease says which
    # worker is writing them, and an expired lease lets another worker take the write-back over.
    op.execute("ALTER TABLE tasks ADD COLUMN memory_pending boolean NOT NULL DEFAULT false")
    op.execute(
        "CREATE INDEX ix_tasks_memory_pending ON tasks (lease_expires_at) WHERE memory_pending"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_tasks_memory_pending")
    op.execute("ALTER TABLE tasks DROP COLUMN memory_pending")
