"""Actions: proposed changes to the world, the tenant's auto-approval policies, an append-only audit.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
TENANT_ID = (
    f"tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE"
)
TABLES = ("actions", "action_policies", "action_audit")
KINDS = (
    "'saleor.product_create', 'saleor.stock_update', 'saleor.voucher_create', "
    "'saleor.order_note', 'ads.budget_change', 'ads.campaign_status'"
)

UPGRADE = f"""
CREATE TABLE actions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    {TENANT_ID},
    task_id uuid NOT NULL,
    tool text NOT NULL CHECK (length(tool) BETWEEN 1 AND 200),
    kind text NOT NULL CHECK (kind IN ({KINDS})),
    payload jsonb NOT NULL,
    summary text NOT NULL CHECK (length(summary) BETWEEN 1 AND 2000),
    estimated_impact jsonb,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'executed', 'failed')),
    -- Derived from (task, kind, payload): a crew run retried after a crash proposes once.
    idempotency_key text NOT NULL,
    decided_by text,
    decided_at timestamptz,
    decision_reason text CHECK (length(decision_reason) <= 2000),
    outcome jsonb,
    error jsonb,
    attempts integer NOT NULL DEFAULT 0,
    -- An approved action waits here between attempts (a rate limit, an outage).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner text,
    lease_expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    executed_at timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_actions_list ON actions (tenant_id, created_at DESC, id DESC);
CREATE INDEX ix_actions_task ON actions (task_id) WHERE status IN ('pending', 'approved');
-- What the executors claim from, across tenants.
CREATE INDEX ix_actions_due ON actions (next_attempt_at) WHERE status = 'approved';

CREATE TABLE action_policies (
    {TENANT_ID},
    kind text NOT NULL CHECK (kind IN ({KINDS})),
    auto_approve boolean NOT NULL,
    max_amount numeric(14, 2) CHECK (max_amount >= 0),
    currency text CHECK (currency ~ '^[A-Z]{{3}}$'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind),
    CHECK (max_amount IS NULL OR currency IS NOT NULL)
);

CREATE TABLE action_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    {TENANT_ID},
    action_id uuid NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    event text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{{}}',
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_action_audit_action ON action_audit (action_id, id);

-- The audit is append-only for everyone, the owner included: UPDATE is always refused, and
-- DELETE only once the tenant row is gone. Erasing a tenant deletes its audit through
-- ON DELETE CASCADE, which runs after the tenant row is deleted, so it passes; deleting one
-- action or task (which would take its audit with it) is refused while its tenant exists.
-- Invoker's rights: as the tenant role, RLS shows the caller its own tenant row, so the tenant
-- is never "gone" for it.
CREATE FUNCTION opshub_action_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = OLD.tenant_id) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'action_audit is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER action_audit_append_only BEFORE UPDATE OR DELETE ON action_audit
    FOR EACH ROW EXECUTE FUNCTION opshub_action_audit_append_only();

-- An approved action wakes the executors at commit.
CREATE FUNCTION opshub_actions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('opshub_actions', '');
  RETURN NULL;
END $$;
CREATE TRIGGER actions_notify AFTER INSERT OR UPDATE OF status ON actions
    FOR EACH ROW WHEN (NEW.status = 'approved') EXECUTE FUNCTION opshub_actions_notify();
"""  # noqa: S608 - built from this file's constants only

GRANTS = """
GRANT SELECT, INSERT, UPDATE ON actions TO opshub_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE ON action_policies TO opshub_tenant;
GRANT SELECT, INSERT ON action_audit TO opshub_tenant;
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
    # Dropping the table drops its trigger; nothing deletes audit rows one by one.
    op.execute("DROP TABLE action_audit, action_policies, actions")
    op.execute("DROP FUNCTION opshub_action_audit_append_only(), opshub_actions_notify()")
