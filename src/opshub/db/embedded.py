"""The embedded PostgreSQL 16 + pgvector (pgserver) used when no database URL is configured."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import quote

with warnings.catch_warnings():
    # platformdirs warns about a missing XDG_RUNTIME_DIR when pgserver imports it.
    warnings.simplefilter("ignore")
    import pgserver

DATABASE_NAME = "opshub"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server in ``data_dir/pg``; return an owner URL for its opshub database.

    pgserver counts the processes using a data directory: a second opshub process attaches to
    the running server, and the server stops when the last of them exits.
    """
    pg_dir = (data_dir / "pg").resolve()
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(  # type: ignore[attr-defined]
            pg_dir, cleanup_mode="stop"
        )
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'opshub';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(pg_dir))}"


def stop_embedded_postgres(data_dir: Path) -> None:
    """Let go of this process's handle now; the server stops if no other process holds one.

    Needed when the data directory is about to be removed, before the exit hook would run.
    """
    pgserver.get_server((data_dir / "pg").resolve()).cleanup()  # type: ignore[attr-defined]
