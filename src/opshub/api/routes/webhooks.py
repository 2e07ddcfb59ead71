"""Task webhooks: the signing secret (shown once when made), a task's delivery log, redelivery."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path

from opshub.api.deps import AdminDep, MemberDep, StateDep, ViewerDep
from opshub.webhooks import service as webhooks_service
from opshub.webhooks.schemas import (
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookSecretCreated,
    WebhookSecretRotate,
)

router = APIRouter(tags=["webhooks"])


@router.post("/v1/webhook-secret", response_model=WebhookSecretCreated, status_code=201)
async def rotate_webhook_secret(
    ctx: AdminDep, body: Annotated[WebhookSecretRotate | None, Body()] = None
) -> WebhookSecretCreated:
    """Make a new whsec_ secret, shown this once; the secrets in use keep signing beside it
    for ``overlap_seconds`` (the old X-Opshub-Signature secret included), then stop."""
    return await webhooks_service.rotate_secret(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        overlap_seconds=(body or WebhookSecretRotate()).overlap_seconds,
    )


@router.get("/v1/tasks/{task_id}/webhooks", response_model=WebhookDeliveryPage)
async def list_task_webhooks(
    ctx: ViewerDep, state: StateDep, task_id: uuid.UUID
) -> WebhookDeliveryPage:
    """The task's webhook deliveries with every attempt and the receiver's status code."""
    items = await webhooks_service.list_for_task(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        task_id=task_id,
        max_attempts=state.settings.webhook_max_attempts,
    )
    return WebhookDeliveryPage(items=items)


@router.post(
    "/v1/tasks/{task_id}/webhooks/{delivery_id}/redeliver",
    response_model=WebhookDelivery,
    status_code=202,
)
async def redeliver_task_webhook(
    ctx: MemberDep,
    state: StateDep,
    task_id: uuid.UUID,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> WebhookDelivery:
    """Send it again from the first try, under the same webhook-id."""
    return await webhooks_service.redeliver(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        task_id=task_id,
        delivery_id=delivery_id,
        max_attempts=state.settings.webhook_max_attempts,
    )
