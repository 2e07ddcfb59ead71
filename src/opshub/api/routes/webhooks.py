"""/v1/webhook-secret: the key task webhooks are signed with, shown once when it is made."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from opshub.api.deps import AdminDep
from opshub.runtime.webhooks import SIGNATURE_HEADER
from opshub.tasks import service as tasks_service

router = APIRouter(prefix="/v1/webhook-secret", tags=["webhooks"])


class WebhookSecret(BaseModel):
    secret: str
    header: str
    algorithm: str


@router.post("", response_model=WebhookSecret, status_code=201)
async def rotate_webhook_secret(ctx: AdminDep) -> WebhookSecret:
    """Make (or replace) the secret; it is shown this once. Verify a delivery by computing
    HMAC-SHA256 of the raw body with it and comparing with the header's hex digest."""
    secret = await tasks_service.rotate_webhook_secret(ctx.conn, tenant_id=ctx.principal.tenant_id)
    return WebhookSecret(secret=secret, header=SIGNATURE_HEADER, algorithm="sha256")
