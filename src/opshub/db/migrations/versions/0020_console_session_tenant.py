"""Console: a page's session lookup also names its tenant and plan, in the same round trip.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# A function's result columns change only by dropping it; the old columns come first, as before.
LOOKUP = """
CREATE FUNCTION opshub_console_session(p_token_hash bytea)
RETURNS TABLE (session_id uuid, tenant_id uuid, user_id uuid, role text, csrf_token text{extra})
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.id, s.tenant_id, s.user_id, u.role, s.csrf_token{extra_values}
  FROM console_sessions s
  JOIN users u ON u.id = s.user_id
  JOIN tenants t ON t.id = s.tenant_id
  WHERE s.token_hash = p_token_hash AND s.revoked_at IS NULL AND s.expires_at > now()
    AND u.disabled_at IS NULL
$$
"""


def _lookup(*, with_tenant: bool) -> None:
    op.execute("DROP FUNCTION opshub_console_session(bytea)")
    op.execute(
        LOOKUP.format(
            extra=", tenant_name text, tenant_plan text" if with_tenant else "",
            extra_values=", t.name, t.plan" if with_tenant else "",
        )
    )
    op.execute("REVOKE ALL ON FUNCTION opshub_console_session(bytea) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION opshub_console_session(bytea) TO opshub_tenant")


def upgrade() -> None:
    _lookup(with_tenant=True)


def downgrade() -> None:
    _lookup(with_tenant=False)
