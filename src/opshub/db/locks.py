"""Advisory locks: one holder at a time of a background job (a session lock) or of a statement
sequence (a transaction lock), across processes."""

from __future__ import annotations

from opshub.db.engine import QUERIES, note_session_lock
from opshub.db.sql import Connection


async def try_lock(conn: Connection, *, key: int) -> bool:
    """Held by the session until ``unlock``; False when another holds it."""
    locked = bool(await QUERIES["try_advisory_lock"].fetchval(conn, key=key))
    if locked:
        note_session_lock(conn)
    return locked


async def unlock(conn: Connection, *, key: int) -> None:
    await QUERIES["advisory_unlock"].execute(conn, key=key)


async def lock_transaction(conn: Connection, *, key: int) -> None:
    """Held until the transaction ends; waits for the holder."""
    await QUERIES["advisory_xact_lock"].execute(conn, key=key)
