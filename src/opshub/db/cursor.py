"""Opaque keyset cursors over (created_at, id), newest first, shared by every list endpoint."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime

from opshub.errors import InvalidInputError


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        return datetime.fromisoformat(created_at).astimezone(UTC), uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(
            "the cursor is not one this API returned",
            details={"fields": [{"loc": "query.cursor", "message": "invalid cursor"}]},
        ) from exc
