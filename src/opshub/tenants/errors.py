from __future__ import annotations

from opshub.errors import ConflictError


class EmailTakenError(ConflictError):
    code = "email_taken"
