"""The base of every domain error. Only ``opshub.api.errors`` turns them into HTTP responses."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An expected failure with a machine-readable ``code`` and a message safe to show a client."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(DomainError):
    code = "not_found"


class ConflictError(DomainError):
    code = "conflict"


class InvalidInputError(DomainError):
    code = "invalid_request"


class RateLimitedError(DomainError):
    """Too many requests of one kind (sign-ins, API calls, credential checks): 429."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after
