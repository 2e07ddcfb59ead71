"""The queue keeps one row per tenant with its queued and running counts, so a claim reads the
few tenants whose turn it is instead of every tenant with queued work.

The claim used to walk every tenant with a queued task (a loose index scan) and count its running
tasks: ~65 ms a claim with 1,000 such tenants and ~700 ms with 10,000 (bench/queue_scale.py), all
under the claim lock. Triggers now keep each tenant's counts, and the claim takes the tenants with
the fewest running tasks, never served or served longest ago, through an index, as many as it has
slots.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"

# Counts move with the statements that change tasks, as whoever changes them: a tenant's own
# transaction counts its own row (under RLS), the queue's claims count any. Inserts and deletes
# count per statement (an import or a purge is one upsert per tenant); a status change counts
# per row, and only for rows that enter or leave queued or running (the WHEN clause), so lease
# renewals and other updates cost nothing.
UPGRADE = [
    f"""
CREATE TABLE queue_turns (
    tenant_id uuid PRIMARY KEY DEFAULT {TENANT_SETTING} REFERENCES tenants (id) ON DELETE CASCADE,
    queued integer NOT NULL DEFAULT 0,
    running integer NOT NULL DEFAULT 0,
    served_at timestamptz,
    waiting_since timestamptz NOT NULL DEFAULT now()
)
""",
    """
CREATE INDEX ix_queue_turns_next ON queue_turns
    (running, served_at NULLS FIRST, waiting_since, tenant_id) WHERE queued > 0
""",
    """
INSERT INTO queue_turns (tenant_id, queued, running)
SELECT tenant_id, count(*) FILTER (WHERE status = 'queued'),
       count(*) FILTER (WHERE status = 'running')
  FROM tasks WHERE status IN ('queued', 'running') GROUP BY tenant_id
""",
    """
CREATE FUNCTION opshub_queue_turns_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO queue_turns (tenant_id, queued, running)
  SELECT tenant_id, count(*) FILTER (WHERE status = 'queued'),
         count(*) FILTER (WHERE status = 'running')
    FROM new_rows WHERE status IN ('queued', 'running')
   GROUP BY tenant_id ORDER BY tenant_id
  ON CONFLICT (tenant_id) DO UPDATE SET queued = queue_turns.queued + EXCLUDED.queued,
                                        running = queue_turns.running + EXCLUDED.running;
  RETURN NULL;
END $$
""",
    """
CREATE FUNCTION opshub_queue_turns_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE queue_turns q SET queued = q.queued - d.queued, running = q.running - d.running
    FROM (SELECT tenant_id, count(*) FILTER (WHERE status = 'queued') AS queued,
                 count(*) FILTER (WHERE status = 'running') AS running
            FROM old_rows WHERE status IN ('queued', 'running') GROUP BY tenant_id) d
   WHERE q.tenant_id = d.tenant_id;
  RETURN NULL;
END $$
""",
    """
CREATE FUNCTION opshub_queue_turns_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO queue_turns AS q (tenant_id, queued, running)
  VALUES (NEW.tenant_id,
          (NEW.status = 'queued')::int - (OLD.status = 'queued')::int,
          (NEW.status = 'running')::int - (OLD.status = 'running')::int)
  ON CONFLICT (tenant_id) DO UPDATE SET queued = q.queued + EXCLUDED.queued,
                                        running = q.running + EXCLUDED.running;
  RETURN NULL;
END $$
""",
    """
CREATE TRIGGER tasks_queue_turns_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION opshub_queue_turns_inserted()
""",
    """
CREATE TRIGGER tasks_queue_turns_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION opshub_queue_turns_deleted()
""",
    """
CREATE TRIGGER tasks_queue_turns_move AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND (OLD.status IN ('queued', 'running')
                            OR NEW.status IN ('queued', 'running')))
    EXECUTE FUNCTION opshub_queue_turns_moved()
""",
    "ALTER TABLE queue_turns ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE queue_turns FORCE ROW LEVEL SECURITY",
    f"""
CREATE POLICY tenant_isolation ON queue_turns
    USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})
""",
    "GRANT SELECT, INSERT, UPDATE ON queue_turns TO opshub_tenant",
]


def upgrade() -> None:
    for statement in UPGRADE:  # one a call: the driver prepares each
        op.execute(statement)


def downgrade() -> None:
    for trigger in ("insert", "delete", "move"):
        op.execute(f"DROP TRIGGER tasks_queue_turns_{trigger} ON tasks")
    for function in ("inserted", "deleted", "moved"):
        op.execute(f"DROP FUNCTION opshub_queue_turns_{function}()")
    op.execute("DROP TABLE queue_turns")
