"""Chat-style threads: each user message becomes a task of the thread; the answer is the agent's
turn (stored by the worker with the task's outcome)."""

from __future__ import annotations

import uuid
from pathlib import Path

from opshub.db.cursor import decode_cursor, encode_cursor
from opshub.db.sql import Connection, load_queries
from opshub.errors import NotFoundError
from opshub.tasks import service as tasks_service
from opshub.tasks.schemas import TaskCreate
from opshub.threads.schemas import (
    MessageCreate,
    MessagePosted,
    MessageRead,
    ThreadRead,
    ThreadSummary,
)

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


async def create_thread(conn: Connection, *, tenant_id: uuid.UUID, title: str | None) -> ThreadRead:
    row = await QUERIES["create_thread"].fetchone(conn, tenant_id=tenant_id, title=title)
    return ThreadRead(**dict(row))


async def get_thread(conn: Connection, *, tenant_id: uuid.UUID, thread_id: uuid.UUID) -> ThreadRead:
    row = await QUERIES["get_thread"].fetchrow(conn, tenant_id=tenant_id, thread_id=thread_id)
    if row is None:
        raise NotFoundError("thread not found")
    return ThreadRead(**dict(row))


async def list_threads(
    conn: Connection, *, tenant_id: uuid.UUID, cursor: str | None = None, limit: int = 50
) -> tuple[list[ThreadSummary], str | None]:
    """Newest first; returns (threads, next cursor or None at the end)."""
    after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
    rows = await QUERIES["list_threads"].fetch(
        conn, tenant_id=tenant_id, after_created_at=after_at, after_id=after_id, limit=limit + 1
    )
    items = [ThreadSummary(**dict(row)) for row in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    last = rows[limit - 1]
    return items, encode_cursor(last["created_at"], last["id"])


async def post_message(
    conn: Connection, *, tenant_id: uuid.UUID, thread_id: uuid.UUID, body: MessageCreate
) -> MessagePosted:
    """The user's turn and the task that answers it, committed together."""
    task, _ = await tasks_service.submit_task(
        conn,
        tenant_id=tenant_id,
        body=TaskCreate(crew=body.crew, input=body.content, thread_id=thread_id),
    )
    row = await QUERIES["add_user_message"].fetchone(
        conn, tenant_id=tenant_id, thread_id=thread_id, content=body.content, task_id=task.id
    )
    return MessagePosted(message=MessageRead(**dict(row)), task=task)


async def list_messages(
    conn: Connection, *, tenant_id: uuid.UUID, thread_id: uuid.UUID, after: int, limit: int
) -> list[MessageRead]:
    await get_thread(conn, tenant_id=tenant_id, thread_id=thread_id)
    rows = await QUERIES["list_messages"].fetch(
        conn, tenant_id=tenant_id, thread_id=thread_id, after=after, limit=limit
    )
    return [MessageRead(**dict(row)) for row in rows]
