"""The task runtime: tasks (the queue), their events, threads, schedules and webhook deliveries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
TENANT_ID = (
    f"tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE"
)
TABLES = ("threads", "thread_messages", "schedules", "tasks", "task_events", "webhook_deliveries")

UPGRADE = f"""
ALTER TABLE tenants ADD COLUMN max_running_tasks integer CHECK (max_running_tasks > 0);
ALTER TABLE tenants ADD COLUMN webhook_secret text;

CREATE TABLE threads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    {TENANT_ID},
    title text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

CREATE TABLE schedules (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    {TENANT_ID},
    crew text,
    input text NOT NULL,
    inputs jsonb NOT NULL DEFAULT '{{}}',
    cron text NOT NULL,
    timezone text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    next_run_at timestamptz,
    last_run_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX ix_schedules_due ON schedules (next_run_at) WHERE enabled;

CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    {TENANT_ID},
    crew text,
    input text NOT NULL,
    inputs jsonb NOT NULL DEFAULT '{{}}',
    thread_id uuid,
    schedule_id uuid,
    retry_of uuid,
    priority smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9),
    status text NOT NULL DEFAULT 'queued' CHECK (status IN
        ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled')),
    idempotency_key text,
    webhook_url text,
    result jsonb,
    error jsonb,
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    run_after timestamptz NOT NULL DEFAULT now(),
    lease_owner text,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    input_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    cost_usd numeric(14, 6) NOT NULL DEFAULT 0,
    billed_to text CHECK (billed_to IN ('byok', 'platform')),
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, thread_id) REFERENCES threads (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, schedule_id) REFERENCES schedules (tenant_id, id)
        ON DELETE SET NULL (schedule_id),
    FOREIGN KEY (tenant_id, retry_of) REFERENCES tasks (tenant_id, id)
        ON DELETE SET NULL (retry_of)
);
-- The claim query walks tenants with queued work, then each tenant's best task.
CREATE INDEX ix_tasks_queued ON tasks (tenant_id, priority DESC, created_at)
    WHERE status = 'queued';
CREATE INDEX ix_tasks_running ON tasks (tenant_id) WHERE status = 'running';
CREATE INDEX ix_tasks_lease ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX ix_tasks_list ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX ix_tasks_thread ON tasks (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX ix_tasks_schedule ON tasks (schedule_id, created_at DESC)
    WHERE schedule_id IS NOT NULL;
CREATE UNIQUE INDEX uq_tasks_idempotency ON tasks (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE thread_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    {TENANT_ID},
    thread_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('user', 'agent')),
    content text NOT NULL,
    task_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, thread_id) REFERENCES threads (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_thread_messages_thread ON thread_messages (thread_id, id);

CREATE TABLE task_events (
    {TENANT_ID},
    task_id uuid NOT NULL,
    seq integer NOT NULL,
    type text NOT NULL,
    ts timestamptz NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (task_id, seq),
    FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    {TENANT_ID},
    task_id uuid NOT NULL,
    url text NOT NULL,
    body jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    last_status integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL;

-- A new task, and a cancel request, wake workers at commit.
CREATE FUNCTION opshub_tasks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('opshub_tasks', '');
  ELSIF NEW.cancel_requested AND NOT OLD.cancel_requested THEN
    PERFORM pg_notify('opshub_task_cancel', NEW.id::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER tasks_notify_insert AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION opshub_tasks_notify();
CREATE TRIGGER tasks_notify_cancel AFTER UPDATE OF cancel_requested ON tasks
    FOR EACH ROW EXECUTE FUNCTION opshub_tasks_notify();
"""

GRANTS = """
GRANT SELECT, INSERT, UPDATE, DELETE ON threads, schedules TO opshub_tenant;
GRANT SELECT, INSERT ON thread_messages TO opshub_tenant;
GRANT SELECT, INSERT, UPDATE ON tasks TO opshub_tenant;
GRANT SELECT, INSERT ON task_events TO opshub_tenant;
GRANT SELECT, INSERT ON webhook_deliveries TO opshub_tenant;
GRANT UPDATE (webhook_secret) ON tenants TO opshub_tenant;
"""


def _statements(script: str) -> list[str]:
    """One statement at a time: the driver prepares each; ``$$`` bodies keep their semicolons."""
    statements, current, quoted = [], "", False
    for line in script.splitlines(keepends=True):
        current += line
        quoted ^= line.count("$$") % 2 == 1
        if not quoted and line.rstrip().endswith(";"):
            statements.append(current.strip())
            current = ""
    return [statement for statement in statements if statement]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
        )
    for statement in _statements(GRANTS):
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE webhook_deliveries, task_events, thread_messages, tasks, schedules, threads"
    )
    op.execute("DROP FUNCTION opshub_tasks_notify()")
    op.execute("ALTER TABLE tenants DROP COLUMN webhook_secret, DROP COLUMN max_running_tasks")
