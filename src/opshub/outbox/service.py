"""Domain events for the platform's other services, written in the transaction that caused them.

An event commits with its change or not at all; the relay (``opshub.runtime.relay``) delivers it
to the Redis Stream ``opshub.events`` afterwards, whenever Redis is there to take it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opshub.db.sql import Connection, Record, load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
STREAM = "opshub.events"


async def emit(
    conn: Connection, *, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> None:
    await QUERIES["insert_event"].execute(
        conn, tenant_id=tenant_id, event_type=event_type, data=data
    )


async def undelivered(conn: Connection, *, limit: int) -> list[Record]:
    """Across tenants (the relay, as the owner), oldest first."""
    return await QUERIES["undelivered"].fetch(conn, limit=limit)


async def mark_delivered(conn: Connection, *, event_ids: list[int]) -> None:
    await QUERIES["mark_delivered"].execute(conn, event_ids=event_ids)


@dataclass(frozen=True, slots=True)
class TenantEvent:
    """A domain event as the tenant-wide stream sends it; ``cursor`` orders a tenant's events."""

    cursor: int
    type: str
    ts: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TenantEventPage:
    events: list[TenantEvent]
    held_back: bool
    """A committed event waits behind an older open transaction: it shows soon, with no wake-up
    of its own to come (its commit's has been and gone)."""


async def events_after(
    conn: Connection, *, tenant_id: uuid.UUID, after: int, limit: int = 500
) -> TenantEventPage:
    rows = await QUERIES["tenant_events_after"].fetch(
        conn, tenant_id=tenant_id, after=after, limit=limit
    )
    events = [
        TenantEvent(
            cursor=row["id"], type=row["event_type"], ts=row["created_at"], data=row["data"]
        )
        for row in rows
        if row["id"] is not None
    ]
    return TenantEventPage(events, held_back=rows[0]["held_back"])


async def latest_cursor(conn: Connection, *, tenant_id: uuid.UUID) -> int:
    """Where a stream that asks for no history starts: after everything stored so far."""
    cursor: int = await QUERIES["latest_tenant_event"].fetchval(conn, tenant_id=tenant_id)
    return cursor
