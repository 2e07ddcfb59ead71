"""The console: sign-in sessions, the tenant-wide event stream read from the outbox, threads by age.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"

UPGRADE = f"""
CREATE TABLE console_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX ix_console_sessions_user ON console_sessions (user_id) WHERE revoked_at IS NULL;
ALTER TABLE console_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON console_sessions
    USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING});
GRANT SELECT, INSERT, UPDATE ON console_sessions TO opshub_tenant;

-- GET /v1/events reads a tenant's domain events after a cursor (the outbox id). Ids are taken
-- at insert, not at commit: the writing transaction's id lets a reader hold back rows while an
-- older transaction, which may still add a lower id, is open. No rewrite: old rows stay NULL.
GRANT SELECT ON outbox TO opshub_tenant;
ALTER TABLE outbox ADD COLUMN txid xid8;
ALTER TABLE outbox ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE INDEX ix_outbox_tenant ON outbox (tenant_id, id);
CREATE FUNCTION opshub_tenant_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- One notification per tenant and transaction: PostgreSQL folds identical payloads.
  PERFORM pg_notify('opshub_tenant_events', NEW.tenant_id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_tenant_notify AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION opshub_tenant_events_notify();

CREATE INDEX ix_threads_tenant_created ON threads (tenant_id, created_at DESC, id DESC);
"""  # noqa: S608 - constants only

SESSION_LOOKUP = """
-- The cookie comes before the tenant is known: this finds its live session, and only while the
-- user is enabled, so disabling a user ends their sessions at the next request.
CREATE FUNCTION opshub_console_session(p_token_hash bytea)
RETURNS TABLE (session_id uuid, tenant_id uuid, user_id uuid, role text, csrf_token text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.id, s.tenant_id, s.user_id, u.role, s.csrf_token
  FROM console_sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
    AND u.disabled_at IS NULL
$$;
REVOKE ALL ON FUNCTION opshub_console_session(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION opshub_console_session(bytea) TO opshub_tenant;

"""

DOWNGRADE = """
DROP INDEX ix_threads_tenant_created;
DROP TRIGGER outbox_tenant_notify ON outbox;
DROP FUNCTION opshub_tenant_events_notify();
DROP INDEX ix_outbox_tenant;
ALTER TABLE outbox DROP COLUMN txid;
REVOKE SELECT ON outbox FROM opshub_tenant;
DROP FUNCTION opshub_console_session(bytea);
DROP TABLE console_sessions;
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
    for statement in _statements(UPGRADE + SESSION_LOOKUP):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
