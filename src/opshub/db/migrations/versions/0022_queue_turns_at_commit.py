"""A task's move in or out of queued or running counts in its tenant's queue turn at commit.

The row trigger of 0012 updated the tenant's ``queue_turns`` row when the task's status changed,
and the row stayed locked until the transaction ended. A run's ending changes the status first
and then stores its usage, its domain event, its thread turn and its webhook, round trips on a
worker's event loop that is busy with other crews: every other run of the same tenant ending
meanwhile waited for that row (130 ms and more, seen in PostgreSQL's lock-wait log under
bench/console.py), one behind another, each holding its own transaction open the while. As a
deferred constraint trigger the same count moves at commit: the row is locked for the commit
only. Within one statement nothing changes (row triggers fired at its end before).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

WHEN = """
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND (OLD.status IN ('queued', 'running')
                            OR NEW.status IN ('queued', 'running')))
    EXECUTE FUNCTION opshub_queue_turns_moved()
"""


def upgrade() -> None:
    op.execute("DROP TRIGGER tasks_queue_turns_move ON tasks")
    op.execute(
        "CREATE CONSTRAINT TRIGGER tasks_queue_turns_move AFTER UPDATE OF status ON tasks"
        " DEFERRABLE INITIALLY DEFERRED" + WHEN
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tasks_queue_turns_move ON tasks")
    op.execute("CREATE TRIGGER tasks_queue_turns_move AFTER UPDATE OF status ON tasks" + WHEN)
