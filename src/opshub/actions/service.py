"""Propose, read, approve and reject actions; settle the task whose last action was decided.

Every function runs on a tenant-bound connection in the caller's transaction. Each transition
is audited (``action_audit``, append-only), told to other services (the outbox) and shown on
the task's event stream; the executor's side of the lifecycle is in ``outcomes``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from opshub.actions import policies
from opshub.actions.errors import ActionNotPendingError, InvalidActionError
from opshub.actions.kinds import ActionKind, Payload, parse_payload
from opshub.actions.models import POLICY_ACTOR, ActionStatus, AuditEvent
from opshub.actions.schemas import ActionRead, AuditEntry
from opshub.db.cursor import decode_cursor, encode_cursor
from opshub.db.sql import Connection, Record, load_queries
from opshub.errors import InvalidInputError, NotFoundError
from opshub.observability.actions import action_proposed
from opshub.outbox import service as outbox
from opshub.tasks import service as tasks_service
from opshub.tasks.models import EventType, TaskStatus
from opshub.tasks.schemas import TaskEvent, TaskRead

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
MAX_PAGE = 200


def action_read(row: Record) -> ActionRead:
    return ActionRead.model_validate(dict(row))


def idempotency_key(task_id: uuid.UUID, kind: ActionKind, payload: Payload) -> str:
    """The same proposal from the same task, however its payload's keys were ordered."""
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{task_id}\n{kind.value}\n{canonical}".encode()).hexdigest()


def _validated(kind: ActionKind | str, payload: dict[str, Any]) -> tuple[ActionKind, Payload]:
    try:
        action_kind = ActionKind(kind)
    except ValueError:
        raise InvalidActionError(
            f"there is no action kind {kind!r}", details={"kinds": [k.value for k in ActionKind]}
        ) from None
    try:
        return action_kind, parse_payload(action_kind, payload)
    except ValidationError as exc:
        fields = [
            {"loc": "payload." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        raise InvalidActionError(
            f"the {action_kind.value} payload is not valid", details={"fields": fields}
        ) from None


async def propose(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    tool: str,
    kind: ActionKind | str,
    payload: dict[str, Any],
    summary: str,
    estimated_impact: dict[str, Any] | None = None,
) -> ActionRead:
    """Store a proposal (or return the one the task already made) and apply the tenant's policy.

    Approved here, it wakes an executor when this transaction commits (a trigger NOTIFYs).
    """
    action_kind, parsed = _validated(kind, payload)
    summary = summary.strip()
    if not 1 <= len(summary) <= 2000 or not 1 <= len(tool) <= 200:
        raise InvalidActionError("an action needs a tool name and a summary of 1-2000 characters")
    if not await QUERIES["task_exists"].fetchval(conn, tenant_id=tenant_id, task_id=task_id):
        raise NotFoundError("task not found")
    key = idempotency_key(task_id, action_kind, parsed)
    row = await QUERIES["insert_action"].fetchrow(
        conn,
        tenant_id=tenant_id,
        task_id=task_id,
        tool=tool,
        kind=action_kind.value,
        payload=parsed.model_dump(mode="json"),
        summary=summary,
        estimated_impact=to_jsonable_python(estimated_impact),
        idempotency_key=key,
    )
    if row is None:  # proposed before (a retried run): that proposal stands, decided or not
        existing = await QUERIES["get_by_idempotency_key"].fetchone(
            conn, tenant_id=tenant_id, idempotency_key=key
        )
        return action_read(existing)
    await audit(conn, row, actor=f"tool:{tool}", event=AuditEvent.proposed)
    action_proposed(row)
    await outbox.emit(conn, tenant_id=tenant_id, event_type="action.proposed", data=_data(row))
    rule = await policies.get_rule(conn, tenant_id=tenant_id, kind=action_kind)
    if rule is None or not policies.auto_approves(rule, parsed):
        return action_read(row)
    reason = policies.describe(rule)
    row = await QUERIES["decide_action"].fetchrow(
        conn,
        tenant_id=tenant_id,
        action_id=row["id"],
        status="approved",
        actor=POLICY_ACTOR,
        reason=reason,
    )
    await audit(
        conn,
        row,
        actor=POLICY_ACTOR,
        event=AuditEvent.auto_approved,
        detail={"rule": rule.model_dump(mode="json")},
    )
    await outbox.emit(conn, tenant_id=tenant_id, event_type="action.approved", data=_data(row))
    await task_event(conn, row, "action.approved")
    return action_read(row)


async def get_action(conn: Connection, *, tenant_id: uuid.UUID, action_id: uuid.UUID) -> ActionRead:
    return action_read(await _get_row(conn, tenant_id=tenant_id, action_id=action_id))


async def _get_row(conn: Connection, *, tenant_id: uuid.UUID, action_id: uuid.UUID) -> Record:
    row: Record | None = await QUERIES["get_action"].fetchrow(
        conn, tenant_id=tenant_id, action_id=action_id
    )
    if row is None:
        raise NotFoundError("action not found")
    return row


async def list_actions(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    status: ActionStatus | None = None,
    task_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[ActionRead], str | None]:
    """Newest first; returns (actions, next cursor or None at the end)."""
    after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
    rows = await QUERIES["list_actions"].fetch(
        conn,
        tenant_id=tenant_id,
        status=status.value if status else None,
        task_id=task_id,
        after_created_at=after_at,
        after_id=after_id,
        limit=limit + 1,
    )
    items = [action_read(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    last = rows[limit - 1]
    return items, encode_cursor(last["created_at"], last["id"])


async def open_for_task(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID, lock_task: bool = False
) -> list[ActionRead]:
    """Pending, or approved and not yet executed: what the task still waits for.

    ``lock_task``: the caller ends the task on this answer (awaiting approval or not). The task
    row's lock comes first, as in ``settle_task``, so an action settled meanwhile is either seen
    here or settles the task itself once this transaction commits.
    """
    if lock_task:
        await QUERIES["lock_task"].fetchval(conn, tenant_id=tenant_id, task_id=task_id)
    return [
        action_read(row)
        for row in await QUERIES["open_for_task"].fetch(conn, tenant_id=tenant_id, task_id=task_id)
    ]


async def get_task_with_actions(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID
) -> TaskRead:
    """The task and what it still waits for: its pending and approved, unexecuted actions."""
    task = await tasks_service.get_task(conn, tenant_id=tenant_id, task_id=task_id)
    actions = await open_for_task(conn, tenant_id=tenant_id, task_id=task_id)
    task.pending_actions = [action.model_dump(mode="json") for action in actions]
    return task


async def cancel_task_with_actions(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID
) -> tuple[TaskRead, TaskEvent | None]:
    """Cancel the task (``tasks.service.cancel_task``); the changes still waiting for a person
    are withdrawn with it, approved ones still run."""
    return await tasks_service.cancel_task(
        conn,
        tenant_id=tenant_id,
        task_id=task_id,
        on_cancelled=partial(withdraw_pending, conn, tenant_id=tenant_id, task_id=task_id),
    )


async def approve(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    action_id: uuid.UUID,
    actor: str,
    reason: str | None = None,
) -> ActionRead:
    """A person's go-ahead; an executor picks the action up once this commits."""
    return await _decide(conn, tenant_id, action_id, ActionStatus.approved, actor, reason)


async def reject(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    action_id: uuid.UUID,
    actor: str,
    reason: str | None = None,
) -> ActionRead:
    return await _decide(conn, tenant_id, action_id, ActionStatus.rejected, actor, reason)


async def withdraw_pending(conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID) -> None:
    """The task was cancelled: what still waits for a person is rejected, audited as such."""
    for action in await open_for_task(conn, tenant_id=tenant_id, task_id=task_id):
        if action.status is ActionStatus.pending:
            reason = "the task was cancelled"
            await _decide(conn, tenant_id, action.id, ActionStatus.rejected, "task", reason)


async def _decide(
    conn: Connection,
    tenant_id: uuid.UUID,
    action_id: uuid.UUID,
    status: ActionStatus,
    actor: str,
    reason: str | None,
) -> ActionRead:
    row = await QUERIES["decide_action"].fetchrow(
        conn,
        tenant_id=tenant_id,
        action_id=action_id,
        status=status.value,
        actor=actor,
        reason=reason,
    )
    if row is None:
        current = await _get_row(conn, tenant_id=tenant_id, action_id=action_id)
        raise ActionNotPendingError(
            f"only a pending action can be decided; this one is {current['status']}",
            details={"status": current["status"]},
        )
    event = AuditEvent(status.value)
    await audit(conn, row, actor=actor, event=event, detail={"reason": reason} if reason else {})
    await outbox.emit(conn, tenant_id=tenant_id, event_type=f"action.{event}", data=_data(row))
    await task_event(conn, row, f"action.{event}")
    if status is ActionStatus.rejected:
        await settle_task(conn, tenant_id=tenant_id, task_id=row["task_id"])
    return action_read(row)


async def audit(
    conn: Connection,
    row: Record,
    *,
    actor: str,
    event: AuditEvent,
    detail: dict[str, Any] | None = None,
) -> None:
    await QUERIES["insert_audit"].execute(
        conn,
        tenant_id=row["tenant_id"],
        action_id=row["id"],
        actor=actor,
        event=event.value,
        detail=detail or {},
    )


def _data(row: Record) -> dict[str, Any]:
    """An action's domain event: what other services need to follow it, not its payload."""
    return {
        "action_id": str(row["id"]),
        "task_id": str(row["task_id"]),
        "kind": row["kind"],
        "status": row["status"],
    }


async def task_event(conn: Connection, row: Record, type: str, **extra: Any) -> None:
    """The transition on the task's event stream, unless the task is running.

    A running task's worker numbers its events itself (``runtime.task_events``): an event written
    here would take a sequence number the run is about to use. The run shows its own proposals.
    """
    tenant_id, task_id = row["tenant_id"], row["task_id"]
    if (
        await QUERIES["lock_task"].fetchval(conn, tenant_id=tenant_id, task_id=task_id)
        == TaskStatus.running
    ):
        return
    data = {"action_id": str(row["id"]), "kind": row["kind"], "summary": row["summary"], **extra}
    await tasks_service.append_event(
        conn, tenant_id=tenant_id, task_id=task_id, type=type, data={"tool": row["tool"], **data}
    )


async def settle_task(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID
) -> TaskRead | None:
    """End a task awaiting approval once none of its actions is open: it succeeded, with the
    result its run gave. Returns the finished task, or None when it still waits (or never did)."""
    status = await QUERIES["lock_task"].fetchval(conn, tenant_id=tenant_id, task_id=task_id)
    if status != TaskStatus.awaiting_approval:
        return None
    if await QUERIES["task_has_open_actions"].fetchval(conn, tenant_id=tenant_id, task_id=task_id):
        return None
    row = await QUERIES["settle_task"].fetchone(conn, tenant_id=tenant_id, task_id=task_id)
    await outbox.emit(
        conn,
        tenant_id=tenant_id,
        event_type="task.succeeded",
        data=tasks_service.domain_event_data(row),
    )
    result = row["result"]
    usage = {"input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]}
    await tasks_service.append_event(
        conn,
        tenant_id=tenant_id,
        task_id=task_id,
        type=EventType.task_succeeded,
        data={"usage": usage, **({"text": result} if isinstance(result, str) else {})},
    )
    task = tasks_service.task_read(row)
    await tasks_service.enqueue_webhook(conn, tenant_id=tenant_id, task=task)
    return task


async def list_audit(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    kind: ActionKind | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AuditEntry], str | None]:
    """Newest first; the cursor is the last entry's id."""
    if cursor is not None and not cursor.isdigit():
        raise InvalidInputError(
            "the cursor is not one this API returned",
            details={"fields": [{"loc": "query.cursor", "message": "invalid cursor"}]},
        )
    rows = await QUERIES["list_audit"].fetch(
        conn,
        tenant_id=tenant_id,
        before_id=int(cursor) if cursor else None,
        kind=kind.value if kind else None,
        limit=limit + 1,
    )
    items = [AuditEntry.model_validate(dict(row)) for row in rows[:limit]]
    return items, str(items[-1].id) if len(rows) > limit else None
