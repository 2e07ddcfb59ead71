"""A task carries the trace context of the request that submitted it across the queue.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # W3C trace context ({"traceparent": ..., "tracestate": ...}); the worker's run span links to
    # it. NULL when the submitter was not traced.
    op.execute("ALTER TABLE tasks ADD COLUMN trace_context jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE tasks DROP COLUMN trace_context")
