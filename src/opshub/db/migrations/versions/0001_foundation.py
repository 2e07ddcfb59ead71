"""Foundation: pgvector, tenants, users, API keys, tenant business data, row level security.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_SETTING = "nullif(current_setting('app.tenant_id', true), '')::uuid"
TENANT_TABLES = ("users", "api_keys", "clients", "leads", "campaigns", "reports")
DATA_TABLES = ("clients", "leads", "campaigns", "reports")
ROLES = "('owner', 'admin', 'member', 'viewer')"

AUTH_FUNCTIONS = (
    """
    CREATE FUNCTION opshub_api_key_principal(p_key_hash bytea)
    RETURNS TABLE (key_id uuid, tenant_id uuid, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT k.id, k.tenant_id, k.role FROM api_keys k
      WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL
    $$
    """,
    """
    CREATE FUNCTION opshub_user_principal(p_user_id uuid)
    RETURNS TABLE (tenant_id uuid, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT u.tenant_id, u.role FROM users u WHERE u.id = p_user_id AND u.disabled_at IS NULL
    $$
    """,
    """
    CREATE FUNCTION opshub_login_candidate(p_email text)
    RETURNS TABLE (user_id uuid, tenant_id uuid, role text, password_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT u.id, u.tenant_id, u.role, u.password_hash FROM users u
      WHERE u.email = lower(p_email) AND u.disabled_at IS NULL
    $$
    """,
    "REVOKE ALL ON FUNCTION opshub_api_key_principal(bytea), opshub_user_principal(uuid), "
    "opshub_login_candidate(text) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION opshub_api_key_principal(bytea), opshub_user_principal(uuid), "
    "opshub_login_candidate(text) TO opshub_tenant",
)


def _id() -> sa.Column[object]:
    return sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    )


def _tenant_columns() -> list[sa.Column[object]]:
    return [
        _id(),
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            server_default=sa.text(TENANT_SETTING),
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def _updated_at() -> sa.Column[object]:
    return sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _client_reference(table: str) -> sa.ForeignKeyConstraint:
    # Foreign key checks bypass RLS, so the tenant is part of the key: a row can only ever
    # point at a client of its own tenant.
    return sa.ForeignKeyConstraint(
        ["tenant_id", "client_id"],
        ["clients.tenant_id", "clients.id"],
        name=f"fk_{table}_client",
        ondelete="SET NULL (client_id)",
    )


def upgrade() -> None:
    op.execute(
        """
        DO $$ BEGIN
          IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'opshub migrations must run as the owner role with BYPASSRLS (or a superuser); % has neither', current_user;
          END IF;
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'opshub_tenant') THEN
            CREATE ROLE opshub_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS;
          END IF;
        END $$;
        """
    )
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    op.create_table(
        "tenants",
        _id(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False, server_default="standard"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "users",
        *_tenant_columns(),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"role IN {ROLES}", name="role"),
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    )
    op.create_table(
        "api_keys",
        *_tenant_columns(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"role IN {ROLES}", name="role"),
    )
    op.create_table(
        "clients",
        *_tenant_columns(),
        _updated_at(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("industry", sa.Text),
        sa.Column("website", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("notes", sa.Text),
        sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_clients_tenant_id"),
    )
    op.create_table(
        "leads",
        *_tenant_columns(),
        _updated_at(),
        sa.Column("client_id", UUID(as_uuid=True)),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("company", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="new"),
        sa.Column("score", sa.Integer),
        sa.Column("notes", sa.Text),
        sa.Column("next_follow_up_at", sa.DateTime(timezone=True)),
        _client_reference("leads"),
        sa.CheckConstraint(
            "status IN ('new', 'contacted', 'qualified', 'won', 'lost')", name="status"
        ),
    )
    op.create_table(
        "campaigns",
        *_tenant_columns(),
        _updated_at(),
        sa.Column("client_id", UUID(as_uuid=True)),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="draft"),
        sa.Column("objective", sa.Text),
        sa.Column("daily_budget", sa.Numeric(14, 2)),
        sa.Column("currency", sa.Text),
        sa.Column("start_date", sa.Date),
        sa.Column("end_date", sa.Date),
        sa.Column("external_id", sa.Text),
        _client_reference("campaigns"),
        sa.CheckConstraint("status IN ('draft', 'active', 'paused', 'ended')", name="status"),
        sa.CheckConstraint("end_date >= start_date", name="dates"),
    )
    op.create_table(
        "reports",
        *_tenant_columns(),
        _updated_at(),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False, server_default="general"),
        sa.Column("period_start", sa.Date),
        sa.Column("period_end", sa.Date),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("data", JSONB, nullable=False, server_default="{}"),
        sa.Column("author", sa.Text),
        sa.CheckConstraint("period_end >= period_start", name="period"),
    )

    for table in TENANT_TABLES:
        op.create_index(
            f"ix_{table}_tenant_page",
            table,
            ["tenant_id", sa.text("created_at DESC"), sa.text("id DESC")],
        )
    op.create_index("ix_leads_tenant_status", "leads", ["tenant_id", "status"])
    op.create_index("ix_campaigns_tenant_channel", "campaigns", ["tenant_id", "channel"])

    # Row level security: every tenant table answers only to the tenant set for the transaction.
    # FORCE makes the policy bind the table owner too; only a BYPASSRLS role (the migration
    # owner, through the SECURITY DEFINER functions below) sees across tenants.
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON tenants USING (id = {TENANT_SETTING})")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
        )

    op.execute("GRANT USAGE ON SCHEMA public TO opshub_tenant")
    op.execute("GRANT SELECT ON tenants TO opshub_tenant")
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TENANT_TABLES)} TO opshub_tenant"
    )

    # Authentication happens before the tenant is known, so these lookups cross tenants. They
    # return only what authentication needs and run as the owner (SECURITY DEFINER).
    for statement in AUTH_FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS opshub_api_key_principal(bytea), opshub_user_principal(uuid), "
        "opshub_login_candidate(text)"
    )
    for table in ("reports", "campaigns", "leads", "clients", "api_keys", "users", "tenants"):
        op.drop_table(table)
    op.execute("DROP EXTENSION IF EXISTS vector")
    # The opshub_tenant role is cluster-wide and may serve other databases: it stays.
