"""The tenant's webhook signing secrets and the log of a task's webhook deliveries.

Every function runs on a tenant-bound connection; the worker's sender (runtime/webhooks.py)
posts the deliveries and writes their attempts.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from opshub.db.sql import Connection, Record, load_queries
from opshub.tasks import service as tasks_service
from opshub.webhooks import signing
from opshub.webhooks.errors import DeliveryNotFoundError
from opshub.webhooks.schemas import WebhookAttempt, WebhookDelivery, WebhookSecretCreated

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


async def rotate_secret(
    conn: Connection, *, tenant_id: uuid.UUID, overlap_seconds: int
) -> WebhookSecretCreated:
    """A new whsec_ secret, returned once; the ones in use sign beside it for the overlap."""
    expiring = await QUERIES["expire_live_secrets"].fetch(
        conn, tenant_id=tenant_id, overlap_seconds=overlap_seconds
    )
    secret = signing.new_secret()
    await QUERIES["add_secret"].execute(conn, tenant_id=tenant_id, secret=secret)
    until = max((row["expires_at"] for row in expiring), default=None)
    return WebhookSecretCreated(secret=secret, previous_valid_until=until)


def _delivery(row: Record, *, max_attempts: int) -> WebhookDelivery:
    if row["delivered_at"] is not None:
        status = "delivered"
    elif row["tries"] >= max_attempts:
        status = "failed"
    else:
        status = "pending"
    return WebhookDelivery(
        id=row["id"],
        message_id=signing.message_id(row["message_id"]),
        url=row["url"],
        event=row["event"],
        status=status,
        attempts=[WebhookAttempt(**attempt) for attempt in row["attempt_log"]],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        next_attempt_at=row["next_attempt_at"] if status == "pending" else None,
    )


async def list_for_task(
    conn: Connection, *, tenant_id: uuid.UUID, task_id: uuid.UUID, max_attempts: int
) -> list[WebhookDelivery]:
    """The task's deliveries, each with every attempt and the receiver's status code."""
    await tasks_service.get_task(conn, tenant_id=tenant_id, task_id=task_id)  # 404 first
    rows = await QUERIES["task_deliveries"].fetch(
        conn, tenant_id=tenant_id, task_id=task_id, delivery_id=None
    )
    return [_delivery(row, max_attempts=max_attempts) for row in rows]


async def redeliver(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    delivery_id: int,
    max_attempts: int,
) -> WebhookDelivery:
    """Send the delivery again, as new, under its message id; its earlier attempts stay logged."""
    if (
        await QUERIES["redeliver"].fetchval(
            conn, tenant_id=tenant_id, task_id=task_id, delivery_id=delivery_id
        )
        is None
    ):
        raise DeliveryNotFoundError("webhook delivery not found")
    [row] = await QUERIES["task_deliveries"].fetch(
        conn, tenant_id=tenant_id, task_id=task_id, delivery_id=delivery_id
    )
    return _delivery(row, max_attempts=max_attempts)
