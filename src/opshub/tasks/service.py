"""Submit, read, list, cancel and retry tasks; a task's events.

Every function runs on a tenant-bound connection. A submitted task commits together with its
``task.queued`` domain event; the insert trigger wakes the workers at commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opshub.crews.registry import CREWS
from opshub.db.cursor import decode_cursor, encode_cursor
from opshub.db.sql import Connection, Record, load_queries
from opshub.errors import NotFoundError
from opshub.observability.metrics import TASKS_SUBMITTED
from opshub.observability.tracing import trace_context
from opshub.outbox import service as outbox
from opshub.tasks.errors import (
    TaskFinishedError,
    TaskNotRetryableError,
    UnknownCrewError,
    WebhookSecretMissingError,
)
from opshub.tasks.models import TERMINAL_EVENTS, TaskStatus
from opshub.tasks.schemas import TaskCreate, TaskError, TaskEvent, TaskRead, TaskUsage

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_PAGE = 200


def task_read(row: Record) -> TaskRead:
    error = row["error"]
    return TaskRead(
        id=row["id"],
        status=TaskStatus(row["status"]),
        crew=row["crew"],
        input=row["input"],
        inputs=row["inputs"],
        thread_id=row["thread_id"],
        schedule_id=row["schedule_id"],
        retry_of=row["retry_of"],
        priority=row["priority"],
        result=row["result"],
        error=TaskError(**error) if error else None,
        usage=TaskUsage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cost_usd=row["cost_usd"],
            billed_to=row["billed_to"],
        ),
        webhook_url=row["webhook_url"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempt=row["attempt"],
        pending_actions=[],
    )


async def enqueue_webhook(conn: Connection, *, tenant_id: uuid.UUID, task: TaskRead) -> None:
    """The finished task's webhook, sent by a worker after this transaction commits."""
    if task.webhook_url:
        body = {"event": f"task.{task.status.value}", "task": task.model_dump(mode="json")}
        await QUERIES["add_webhook_delivery"].execute(
            conn, tenant_id=tenant_id, task_id=task.id, url=task.webhook_url, body=body
        )


INPUT_PREVIEW_CHARS = 200  # as the panels' lists show a request


def domain_event_data(row: Record) -> dict[str, Any]:
    return {"task_id": str(row["id"]), "status": row["status"], "crew": row["crew"]}


async def submit_task(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    body: TaskCreate,
    schedule_id: uuid.UUID | None = None,
    retry_of: uuid.UUID | None = None,
) -> tuple[TaskRead, bool]:
    """The new task and True, or the task already submitted under the same key and False."""
    if body.crew is not None and body.crew not in CREWS:
        raise UnknownCrewError(f"there is no crew {body.crew!r}", details={"crews": sorted(CREWS)})
    if body.thread_id is not None:
        await _require_thread(conn, tenant_id=tenant_id, thread_id=body.thread_id)
    if body.webhook_url is not None and not await QUERIES["has_webhook_secret"].fetchval(
        conn, tenant_id=tenant_id
    ):
        raise WebhookSecretMissingError(
            "webhooks are signed with the tenant's webhook secret: create it first with "
            "POST /v1/webhook-secret"
        )
    task = {
        "tenant_id": tenant_id,
        "crew": body.crew,
        "input": body.input,
        "inputs": body.inputs,
        "thread_id": body.thread_id,
        "schedule_id": schedule_id,
        "retry_of": retry_of,
        "priority": body.priority,
        "idempotency_key": body.idempotency_key,
        "webhook_url": str(body.webhook_url) if body.webhook_url else None,
        "trace_context": trace_context(),
        # A new run's request comes along with its task.queued event (its start, as a list
        # shows it), so that an open dashboard can show the run without asking for it.
        "preview_chars": INPUT_PREVIEW_CHARS,
    }
    by_key = {"tenant_id": tenant_id, "idempotency_key": body.idempotency_key}
    row = await QUERIES["insert_task"].fetchrow(conn, **task)
    if row is None:
        existing = await QUERIES["get_by_idempotency_key"].fetchrow(conn, **by_key)
        if existing is not None and existing["created_at"] > datetime.now(UTC) - IDEMPOTENCY_WINDOW:
            return task_read(existing), False
        if existing is not None:
            await QUERIES["expire_idempotency_key"].execute(
                conn, tenant_id=tenant_id, task_id=existing["id"]
            )
        row = await QUERIES["insert_task"].fetchrow(conn, **task)
        if row is None:  # another request took the freed key in between: that task is ours
            # The conflict means the row exists.
            existing = await QUERIES["get_by_idempotency_key"].fetchone(conn, **by_key)
            return task_read(existing), False
    TASKS_SUBMITTED.labels(row["crew"] or "routed").inc()
    return task_read(row), True


async def _require_thread(conn: Connection, *, tenant_id: uuid.UUID, thread_id: uuid.UUID) -> None:
    found = await QUERIES["thread_exists"].fetchval(conn, tenant_id=tenant_id, thread_id=thread_id)
    if not found:
        raise NotFoundError("thread not found")


async def get_task(conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID) -> TaskRead:
    """The task alone: ``actions.service.get_task_with_actions`` adds what it waits for."""
    return task_read(await _get_row(conn, tenant_id=tenant_id, task_id=task_id))


async def _get_row(conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID) -> Record:
    row = await QUERIES["get_task"].fetchrow(conn, tenant_id=tenant_id, task_id=task_id)
    if row is None:
        raise NotFoundError("task not found")
    return row


async def list_tasks(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    status: TaskStatus | None = None,
    crew: str | None = None,
    thread_id: uuid.UUID | None = None,
    schedule_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[TaskRead], str | None]:
    """Newest first, created in [created_from, created_before) when given; returns (tasks, next
    cursor or None at the end)."""
    after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
    rows = await QUERIES["list_tasks"].fetch(
        conn,
        tenant_id=tenant_id,
        status=status.value if status else None,
        crew=crew,
        thread_id=thread_id,
        schedule_id=schedule_id,
        after_created_at=after_at,
        after_id=after_id,
        limit=limit + 1,
        created_from=created_from,
        created_before=created_before,
    )
    items = [task_read(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    last = rows[limit - 1]
    return items, encode_cursor(last["created_at"], last["id"])


async def cancel_task(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    on_cancelled: Callable[[], Awaitable[None]] | None = None,
) -> tuple[TaskRead, TaskEvent | None]:
    """Cancel a queued task at once (returns its final event) or ask a running one to stop.

    ``on_cancelled`` runs when the task is cancelled at once, before its final event: the
    actions domain, which builds on tasks, withdraws the task's pending actions there.
    """
    row = await QUERIES["cancel_task"].fetchrow(conn, tenant_id=tenant_id, task_id=task_id)
    if row is None:
        current = await _get_row(conn, tenant_id=tenant_id, task_id=task_id)
        raise TaskFinishedError(f"the task has already {current['status']}")
    if row["status"] != TaskStatus.cancelled:
        return task_read(row), None
    if on_cancelled is not None:
        await on_cancelled()
    await outbox.emit(
        conn, tenant_id=tenant_id, event_type="task.cancelled", data=domain_event_data(row)
    )
    event = await append_event(
        conn, tenant_id=tenant_id, task_id=task_id, type="task.cancelled", data={}
    )
    task = task_read(row)
    await enqueue_webhook(conn, tenant_id=tenant_id, task=task)
    return task, event


async def retry_task(conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID) -> TaskRead:
    """A new task with the failed (or cancelled) one's request, linked to it."""
    old = await _get_row(conn, tenant_id=tenant_id, task_id=task_id)
    if old["status"] not in (TaskStatus.failed, TaskStatus.cancelled):
        raise TaskNotRetryableError(
            f"only failed or cancelled tasks are retried; this one is {old['status']}"
        )
    body = TaskCreate.model_construct(
        crew=old["crew"],
        input=old["input"],
        inputs=old["inputs"],
        thread_id=old["thread_id"],
        priority=old["priority"],
        idempotency_key=None,
        webhook_url=old["webhook_url"],
    )
    task, _ = await submit_task(conn, tenant_id=tenant_id, body=body, retry_of=old["id"])
    return task


async def ended_by(conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID, seq: int) -> bool:
    """Whether the task's events up to ``seq`` include its final one."""
    return bool(
        await QUERIES["ended_by"].fetchval(
            conn, tenant_id=tenant_id, task_id=task_id, seq=seq, types=sorted(TERMINAL_EVENTS)
        )
    )


def event_from_row(row: Record) -> TaskEvent:
    return TaskEvent(seq=row["seq"], type=row["type"], ts=row["ts"], **row["data"])


async def append_event(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID, type: str, data: dict[str, Any]
) -> TaskEvent:
    """One event written outside a run (a queued task's cancel); runs batch theirs."""
    row = await QUERIES["insert_event"].fetchone(
        conn, tenant_id=tenant_id, task_id=task_id, type=type, data=data
    )
    return event_from_row(row)


async def last_event_seq(conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID) -> int:
    seq: int = await QUERIES["last_event_seq"].fetchval(conn, tenant_id=tenant_id, task_id=task_id)
    return seq


async def events_after(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID, after: int, limit: int = 500
) -> list[TaskEvent]:
    rows = await QUERIES["events_after"].fetch(
        conn, tenant_id=tenant_id, task_id=task_id, after=after, limit=limit
    )
    return [event_from_row(row) for row in rows]
