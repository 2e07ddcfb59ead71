"""The sign-in lookup belongs to a narrow login role, no longer to every tenant connection.

``opshub_login_candidate`` returns a user's argon2 hash and tenant for an e-mail: run as the app
role, anything holding that role could harvest every hash. PostgreSQL can't verify argon2, so the
lookup stays, but only ``opshub_signin`` may call it; the login role (``opshub.db.migrate``
provisions it, a member of ``opshub_signin`` and nothing else) serves the sign-in path alone.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Roles are cluster-wide: another database on the server may have made it already.
    op.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'opshub_signin') "
        "THEN CREATE ROLE opshub_signin NOLOGIN; END IF; END $$"
    )
    op.execute("REVOKE EXECUTE ON FUNCTION opshub_login_candidate(text) FROM opshub_tenant")
    op.execute("GRANT EXECUTE ON FUNCTION opshub_login_candidate(text) TO opshub_signin")


def downgrade() -> None:
    op.execute("REVOKE EXECUTE ON FUNCTION opshub_login_candidate(text) FROM opshub_signin")
    op.execute("GRANT EXECUTE ON FUNCTION opshub_login_candidate(text) TO opshub_tenant")
