"""Standard Webhooks: signing secrets with a rotation overlap, message ids, a log of attempts.

The old secret (``tenants.webhook_secret``, which signed ``X-Opshub-Signature``) moves into
``webhook_secrets`` as a non-standard secret: it keeps signing that header until the tenant
rotates to a ``whsec_`` secret and the overlap ends.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
TENANT_ID = (
    f"tenant_id uuid NOT NULL DEFAULT {TENANT_SETTING} REFERENCES tenants(id) ON DELETE CASCADE"
)
TABLES = ("webhook_secrets", "webhook_attempts")

UPGRADE = [
    f"""CREATE TABLE webhook_secrets (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        {TENANT_ID},
        secret text NOT NULL,
        -- A whsec_ secret signs webhook-signature; an old one signs X-Opshub-Signature.
        standard boolean NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        -- NULL while current; after a rotation it still signs until then.
        expires_at timestamptz
    )""",
    "CREATE INDEX ix_webhook_secrets_tenant ON webhook_secrets (tenant_id, created_at DESC)",
    "INSERT INTO webhook_secrets (tenant_id, secret, standard) "
    "SELECT id, webhook_secret, false FROM tenants WHERE webhook_secret IS NOT NULL",
    "ALTER TABLE tenants DROP COLUMN webhook_secret",
    # The same id on every attempt and redelivery, so receivers can drop duplicates.
    "ALTER TABLE webhook_deliveries ADD COLUMN message_id uuid NOT NULL DEFAULT gen_random_uuid()",
    "CREATE INDEX ix_webhook_deliveries_task ON webhook_deliveries (tenant_id, task_id)",
    f"""CREATE TABLE webhook_attempts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        {TENANT_ID},
        delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        status_code integer,
        error text
    )""",
    "CREATE INDEX ix_webhook_attempts_delivery ON webhook_attempts (delivery_id, id)",
    "GRANT SELECT, INSERT, UPDATE ON webhook_secrets TO opshub_tenant",
    "GRANT SELECT ON webhook_attempts TO opshub_tenant",
    "GRANT UPDATE (next_attempt_at, attempts, delivered_at) ON webhook_deliveries TO opshub_tenant",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
        )


def downgrade() -> None:
    op.execute("ALTER TABLE tenants ADD COLUMN webhook_secret text")
    op.execute("GRANT UPDATE (webhook_secret) ON tenants TO opshub_tenant")
    op.execute(
        "UPDATE tenants t SET webhook_secret = s.secret FROM webhook_secrets s "
        "WHERE s.tenant_id = t.id AND NOT s.standard AND s.expires_at IS NULL"
    )
    op.execute("DROP TABLE webhook_attempts, webhook_secrets")
    op.execute("DROP INDEX ix_webhook_deliveries_task")
    op.execute("ALTER TABLE webhook_deliveries DROP COLUMN message_id")
    op.execute(
        "REVOKE UPDATE (next_attempt_at, attempts, delivered_at) ON webhook_deliveries "
        "FROM opshub_tenant"
    )
