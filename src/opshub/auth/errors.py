from __future__ import annotations

from opshub.errors import DomainError


class AuthenticationError(DomainError):
    """No valid credentials: 401. ``code`` says which way they failed."""

    code = "unauthenticated"

    def __init__(self, message: str, *, code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.code = code


class PermissionDeniedError(DomainError):
    code = "forbidden"
