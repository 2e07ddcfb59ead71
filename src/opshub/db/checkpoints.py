"""Where chat routing keeps its LangGraph checkpoints: a schema of their own, reached by psycopg.

The checkpoint tables (``checkpoints``, ``checkpoint_blobs``, ``checkpoint_writes``,
``checkpoint_migrations``) are langgraph-checkpoint-postgres's, created and migrated by its
``setup()``. They are platform tables, not tenant tables: there is no RLS on them and only the
owner role (the worker) reaches them; the app role that serves tenant requests has no grant.
Tenants are kept apart by the thread id, which starts with the tenant id
(``"<tenant_id>:<thread_id>"``, see ``opshub.crews.routing``).

They live in the schema ``routing`` rather than ``public``, so that Alembic's schema (and its
downgrade to base) stays exactly the migrations' own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import make_url

SCHEMA = "routing"
# Connection options libpq understands that may also appear in opshub's asyncpg URLs.
_PASSED_THROUGH = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "target_session_attrs",
    "passfile",
)
# What the checkpointer needs of every connection (langgraph-checkpoint-postgres's README):
# autocommit for its CREATE INDEX CONCURRENTLY, no server-side prepared statements.
CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0}


def conninfo(database_url: str) -> str:
    """A psycopg conninfo for opshub's SQLAlchemy URL (``postgresql+asyncpg://…``).

    Query parameters that asyncpg and libpq share are kept (``host`` for a unix socket, as the
    embedded server uses; asyncpg's ``ssl`` becomes ``sslmode``); asyncpg-only ones are dropped.
    The search path is the checkpoint schema.
    """
    from psycopg.conninfo import make_conninfo

    url = make_url(database_url)
    query = {key: ",".join(v) if isinstance(v, tuple) else v for key, v in url.query.items()}
    params: dict[str, str] = {key: query[key] for key in _PASSED_THROUGH if key in query}
    if "ssl" in query and "sslmode" not in params:
        params["sslmode"] = "require" if query["ssl"] in ("true", "1") else query["ssl"]
    return make_conninfo(
        "",
        host=url.host or query.get("host"),
        port=url.port or query.get("port"),
        dbname=url.database,
        user=url.username,
        password=url.password,
        options=f"-c search_path={SCHEMA}",
        application_name="opshub-routing",
        **params,
    )


async def setup(database_url: str) -> None:
    """Create the schema and bring the checkpoint tables up to date; idempotent.

    Runs as the owner, after Alembic (``opshub.db.migrate.migrate``).
    """
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection
    from psycopg.rows import dict_row

    conn = await AsyncConnection.connect(
        conninfo(database_url), autocommit=True, prepare_threshold=0, row_factory=dict_row
    )
    async with conn:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await AsyncPostgresSaver(conn).setup()
