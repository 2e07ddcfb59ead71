"""The runtime's statements (``queue.sql``), one typed function each, parameters by name.

Most run as the owner, across tenants (claims, leases, events, webhooks); the rest on the
caller's tenant transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from opshub.db.sql import Connection, Record, load_queries

QUERIES = load_queries(Path(__file__).with_name("queue.sql"))


class TaskEventRow(NamedTuple):
    tenant_id: uuid.UUID
    task_id: uuid.UUID
    seq: int
    type: str
    ts: datetime
    data: dict[str, Any]


async def claim_tasks(
    conn: Connection,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    tenant_limit: int,
    backoff_seconds: float,
) -> list[Record]:
    """Claimed tasks (``claimed``) and dead workers' tasks requeued on the way (not)."""
    return await QUERIES["claim_tasks"].fetch(
        conn,
        worker_id=worker_id,
        limit=limit,
        lease_seconds=lease_seconds,
        tenant_limit=tenant_limit,
        backoff_seconds=backoff_seconds,
    )


async def renew_leases(
    conn: Connection, *, task_ids: list[uuid.UUID], worker_id: str, lease_seconds: float
) -> list[Record]:
    return await QUERIES["renew_leases"].fetch(
        conn, task_ids=task_ids, worker_id=worker_id, lease_seconds=lease_seconds
    )


async def release(conn: Connection, *, task_ids: list[uuid.UUID], worker_id: str) -> None:
    await QUERIES["release"].execute(conn, task_ids=task_ids, worker_id=worker_id)


async def end_run(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    worker_id: str,
    status: str,
    result: str | None,
    error: dict[str, Any] | None,
    input_tokens: int,
    output_tokens: int,
    cost_usd: Decimal,
    billed_to: str | None,
    remember: bool,
    usage: dict[str, list[Any]],
    last_event: TaskEventRow,
    channel: str,
    notices: list[str],
) -> Record | None:
    """The task's row as it ended, or None when it is no longer this worker's or, when it
    succeeded, some action is still open. ``usage``: ``RunMeter.ledger()``'s columns;
    ``last_event``: the run's, numbered after every stored one; ``notices``: what carries it
    live, sent on ``channel`` at commit."""
    return await QUERIES["end_run"].fetchrow(
        conn,
        tenant_id=tenant_id,
        task_id=last_event.task_id,
        worker_id=worker_id,
        status=status,
        result=result,
        error=error,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        billed_to=billed_to,
        remember=remember,
        **{f"usage_{column}": values for column, values in usage.items()},
        event_seq=last_event.seq,
        event_ts=last_event.ts,
        event_data=last_event.data,
        channel=channel,
        notices=notices,
    )


async def memory_written(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    worker_id: str,
    input_tokens: int,
    output_tokens: int,
    cost_usd: Decimal,
    usage: dict[str, list[Any]],
) -> bool:
    """False when another worker holds the write-back now. ``usage``: the extraction call's
    ledger rows (``RunMeter.ledger()``'s columns)."""
    row = await QUERIES["memory_written"].fetchrow(
        conn,
        tenant_id=tenant_id,
        task_id=task_id,
        worker_id=worker_id,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        **{f"usage_{column}": values for column, values in usage.items()},
    )
    return row is not None


async def claim_lost_write_backs(
    conn: Connection, *, worker_id: str, lease_seconds: float, limit: int
) -> list[Record]:
    return await QUERIES["claim_lost_write_backs"].fetch(
        conn, worker_id=worker_id, lease_seconds=lease_seconds, limit=limit
    )


async def retry_later(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    worker_id: str,
    delay_seconds: float,
    error: dict[str, Any],
) -> None:
    await QUERIES["retry_later"].execute(
        conn,
        tenant_id=tenant_id,
        task_id=task_id,
        worker_id=worker_id,
        delay_seconds=delay_seconds,
        error=error,
    )


async def store_events(
    conn: Connection, *, events: Sequence[TaskEventRow], channel: str, notices: list[str]
) -> None:
    """Store ``events`` and send ``notices`` on ``channel`` in one round trip."""
    await QUERIES["store_events"].fetch(
        conn,
        tenant_ids=[event.tenant_id for event in events],
        task_ids=[event.task_id for event in events],
        seqs=[event.seq for event in events],
        types=[event.type for event in events],
        stamps=[event.ts for event in events],
        data=[event.data for event in events],
        channel=channel,
        notices=notices,
    )


async def thread_history(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    thread_id: uuid.UUID,
    task_id: uuid.UUID,
    limit: int,
) -> list[Record]:
    """The thread's latest messages, oldest first, without the task's own."""
    return await QUERIES["thread_history"].fetch(
        conn, tenant_id=tenant_id, thread_id=thread_id, task_id=task_id, limit=limit
    )


async def due_webhooks(conn: Connection, *, max_attempts: int, limit: int) -> list[Record]:
    return await QUERIES["due_webhooks"].fetch(conn, max_attempts=max_attempts, limit=limit)


async def log_webhook_attempt(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    delivery_id: int,
    status_code: int | None,
    error: str | None,
) -> None:
    await QUERIES["log_webhook_attempt"].execute(
        conn, tenant_id=tenant_id, delivery_id=delivery_id, status_code=status_code, error=error
    )


async def webhook_delivered(conn: Connection, *, delivery_id: int, status_code: int | None) -> None:
    await QUERIES["webhook_delivered"].execute(
        conn, delivery_id=delivery_id, status_code=status_code
    )


async def webhook_failed(
    conn: Connection,
    *,
    delivery_id: int,
    status_code: int | None,
    error: str,
    delay_seconds: float,
) -> None:
    await QUERIES["webhook_failed"].execute(
        conn,
        delivery_id=delivery_id,
        status_code=status_code,
        error=error,
        delay_seconds=delay_seconds,
    )


async def set_task_crew(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID, crew: str
) -> None:
    await QUERIES["set_task_crew"].execute(conn, tenant_id=tenant_id, task_id=task_id, crew=crew)
