"""Domain events for the platform's other services, written in the transaction that caused them.

An event commits with its change or not at all; the relay (``opshub.runtime.relay``) delivers it
to the Redis Stream ``opshub.events`` afterwards, whenever Redis is there to take it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from opshub.db.sql import Connection, load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
STREAM = "opshub.events"


async def emit(
    conn: Connection, *, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> None:
    await conn.execute(QUERIES["insert_event"], tenant_id, event_type, data)
