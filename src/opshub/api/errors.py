"""The one place errors become HTTP: the API.md envelope, never a stack trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opshub.auth.errors import AuthenticationError, PermissionDeniedError
from opshub.credentials.errors import (
    CredentialInvalidError,
    CredentialMissingError,
    CredentialStoreError,
)
from opshub.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
)
from opshub.memory.errors import EmbeddingFailedError

log = structlog.get_logger(__name__)

_STATUS: list[tuple[type[DomainError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (RateLimitedError, 429),
    (CredentialMissingError, 409),
    (CredentialInvalidError, 409),
    (CredentialStoreError, 503),
    (EmbeddingFailedError, 502),
]
# 400: a body that can't be parsed (not JSON, not UTF-8) is as invalid a request as a wrong field.
_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
# The database, or the way to it, is away (stopped, restarting, out of connections): the request
# may succeed if sent again shortly.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
RETRY_AFTER_SECONDS = 5


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
    status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 400)
    headers = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(status, exc.code, exc.message, exc.details, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    # The offending input is left out on purpose: it may be a password or a secret.
    fields = [
        {"loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    return error_response(422, "invalid_request", "the request is not valid", {"fields": fields})


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unstorable_value(_: Request, exc: Exception) -> JSONResponse:
    # Inputs are validated before they reach the database; this catches what slips through
    # (a value PostgreSQL can't represent) as the client's error, not ours.
    log.warning("value refused by the database", error=type(exc).__name__)
    return error_response(422, "invalid_request", "a value in the request can't be stored")


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Answered here, not by the last-resort handler: that one re-raises after answering, and the
    # server then drops the client's kept-alive connection.
    log.warning("database unavailable", error=type(exc).__name__)
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "something went wrong on our side")


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(asyncpg.DataError, _unstorable_value)
    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
