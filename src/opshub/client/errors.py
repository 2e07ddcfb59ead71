"""The API's error envelope (``{"error": {"code", "message", "details"?}}``) as exceptions."""

from __future__ import annotations

from typing import Any

import httpx


class OpshubError(Exception):
    """Anything the client could not do; ``str()`` is one line safe to show a person."""


class HubUnreachableError(OpshubError):
    """No answer from the hub at all (connection refused, DNS, timeout)."""


class ApiError(OpshubError):
    """The hub answered with an error: its HTTP status and machine-readable ``code``."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class InvalidRequestError(ApiError):
    """400, 413 or 422: the request itself is wrong (``details.fields`` names the fields)."""


class AuthenticationError(ApiError):
    """401: no credentials, or an API key or token the hub does not accept."""


class PermissionDeniedError(ApiError):
    """403: the caller's role may not do this."""


class NotFoundError(ApiError):
    """404: no such thing in the caller's tenant."""


class ConflictError(ApiError):
    """409: the thing is not in a state that allows this (a finished task, a decided action)."""


class RateLimitedError(ApiError):
    """429: slow down; ``retry_after`` seconds."""

    retry_after: float | None = None


class ServerError(ApiError):
    """5xx: the hub or a service behind it failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def from_response(response: httpx.Response) -> ApiError:
    """The exception for an error answer, read from the envelope when there is one."""
    status = response.status_code
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    try:
        error = response.json()["error"]
        exc = kind(status, str(error["code"]), str(error["message"]), error.get("details"))
    except (ValueError, KeyError, TypeError):
        exc = kind(status, "http_error", f"the hub answered HTTP {status}")
    if isinstance(exc, RateLimitedError):
        retry = response.headers.get("retry-after")
        exc.retry_after = float(retry) if retry and retry.replace(".", "", 1).isdigit() else None
    return exc
