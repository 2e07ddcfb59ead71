"""The executor's side of an action: claimed under a lease, then executed, failed or put off.

Claims run as the owner across tenants (``claim``, ``renew_leases``, ``release``); outcomes are
recorded on a tenant-bound connection. Each outcome holds only while the lease is still the
caller's: an executor presumed dead (its lease ran out) records nothing, and the one that took
the action over records instead.
"""

from __future__ import annotations

import uuid
from typing import Any

from opshub.actions.models import AuditEvent
from opshub.actions.schemas import ActionRead
from opshub.actions.service import QUERIES, action_read, audit, settle_task, task_event
from opshub.db.sql import Connection, Record
from opshub.outbox import service as outbox


async def claim(
    conn: Connection, *, lease_owner: str, limit: int, lease_seconds: float
) -> list[Record]:
    """Approved actions now this executor's, ``attempts`` counted; the caller's transaction."""
    rows: list[Record] = await QUERIES["claim_actions"].fetch(
        conn, lease_owner=lease_owner, limit=limit, lease_seconds=lease_seconds
    )
    return rows


async def audit_started(conn: Connection, *, action_ids: list[uuid.UUID], actor: str) -> None:
    await QUERIES["audit_started"].execute(conn, action_ids=action_ids, actor=actor)


async def renew_leases(
    conn: Connection, *, action_ids: list[uuid.UUID], lease_owner: str, lease_seconds: float
) -> set[uuid.UUID]:
    """The actions still this executor's."""
    rows = await QUERIES["renew_leases"].fetch(
        conn, action_ids=action_ids, lease_owner=lease_owner, lease_seconds=lease_seconds
    )
    return {row["id"] for row in rows}


async def release(conn: Connection, *, action_ids: list[uuid.UUID], lease_owner: str) -> None:
    await QUERIES["release_leases"].execute(conn, action_ids=action_ids, lease_owner=lease_owner)


async def record_executed(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    action_id: uuid.UUID,
    lease_owner: str,
    outcome: dict[str, Any],
) -> ActionRead | None:
    row = await QUERIES["mark_executed"].fetchrow(
        conn, tenant_id=tenant_id, action_id=action_id, lease_owner=lease_owner, outcome=outcome
    )
    if row is None:
        return None
    await _finished(conn, row, AuditEvent.executed, lease_owner, {"outcome": outcome})
    return action_read(row)


async def record_failed(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    action_id: uuid.UUID,
    lease_owner: str,
    error: dict[str, Any],
) -> ActionRead | None:
    row = await QUERIES["mark_failed"].fetchrow(
        conn, tenant_id=tenant_id, action_id=action_id, lease_owner=lease_owner, error=error
    )
    if row is None:
        return None
    await _finished(conn, row, AuditEvent.failed, lease_owner, {"error": error})
    return action_read(row)


async def retry_later(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    action_id: uuid.UUID,
    lease_owner: str,
    error: dict[str, Any],
    delay_seconds: float,
) -> ActionRead | None:
    """Still approved; the next attempt waits ``delay_seconds`` (the service asked us to)."""
    row = await QUERIES["retry_later"].fetchrow(
        conn,
        tenant_id=tenant_id,
        action_id=action_id,
        lease_owner=lease_owner,
        error=error,
        delay_seconds=delay_seconds,
    )
    if row is None:
        return None
    detail = {"error": error, "attempt": row["attempts"], "delay_seconds": delay_seconds}
    await audit(conn, row, actor=lease_owner, event=AuditEvent.retry_scheduled, detail=detail)
    return action_read(row)


async def _finished(
    conn: Connection, row: Record, event: AuditEvent, actor: str, detail: dict[str, Any]
) -> None:
    await audit(conn, row, actor=actor, event=event, detail={**detail, "attempt": row["attempts"]})
    data = {
        "action_id": str(row["id"]),
        "task_id": str(row["task_id"]),
        "kind": row["kind"],
        "status": row["status"],
        **detail,
    }
    await outbox.emit(conn, tenant_id=row["tenant_id"], event_type=f"action.{event}", data=data)
    await task_event(conn, row, f"action.{event}", **detail)
    await settle_task(conn, tenant_id=row["tenant_id"], task_id=row["task_id"])
