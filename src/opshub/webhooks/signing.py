"""Signatures as the Standard Webhooks spec has them, and the old ``X-Opshub-Signature``.

Standard: ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed
with the base64-decoded part of a ``whsec_`` secret; during a rotation's overlap each live
secret adds its signature, space-separated, so a receiver holding either one verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

PREFIX = "whsec_"
LEGACY_HEADER = "X-Opshub-Signature"
KEY_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def message_id(value: uuid.UUID) -> str:
    """The ``webhook-id`` of a delivery: the same on every attempt and redelivery."""
    return f"msg_{value.hex}"


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def legacy_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(
    *, msg_id: str, timestamp: int, body: bytes, standard: list[str], legacy: str | None
) -> dict[str, str]:
    """The signature headers of one attempt, from the tenant's live secrets."""
    signed: dict[str, str] = {}
    if standard:
        signed["webhook-id"] = msg_id
        signed["webhook-timestamp"] = str(timestamp)
        signed["webhook-signature"] = " ".join(
            standard_signature(secret, msg_id, timestamp, body) for secret in standard
        )
    if legacy:
        signed[LEGACY_HEADER] = legacy_signature(legacy, body)
    return signed
