"""Request and response shapes of /v1/webhook-secret and a task's webhook deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from opshub.schemas import StrictInput

MAX_OVERLAP_SECONDS = 7 * 24 * 3600


class WebhookSecretRotate(StrictInput):
    overlap_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the secrets in use now keep signing beside the new one.",
    )


class WebhookSecretCreated(BaseModel):
    secret: str = Field(description="whsec_<base64 key>: shown this once.")
    header: str = "webhook-signature"
    algorithm: str = "v1 (HMAC-SHA256 of '{webhook-id}.{webhook-timestamp}.{body}')"
    previous_valid_until: datetime | None = Field(
        description="Until when deliveries are also signed with the previous secrets."
    )


class WebhookAttempt(BaseModel):
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; none: no answer.")
    error: str | None


class WebhookDelivery(BaseModel):
    id: int
    message_id: str = Field(description="The webhook-id header: the same on every attempt.")
    url: str
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[WebhookAttempt]
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDelivery]
