"""One way to call a connected service: timeouts, retries on 429/5xx that honour the service's
retry hint (run by tenacity), and failures turned into ``ConnectorError``s by a
provider-specific classifier."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorResponseError,
    ConnectorUnavailableError,
)
from opshub.credentials.models import Provider


class FailureKind(StrEnum):
    auth = "auth"
    rate_limited = "rate_limited"
    transient = "transient"
    request = "request"
    response = "response"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str
    retry_after: float | None = None


# Reads a response; None when it is a success. Meta answers some failures with HTTP 200.
Classifier = Callable[[httpx.Response], Failure | None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.5
    # A hint longer than this is not waited out inside a run: the agent hears when to come back.
    max_wait: float = 30.0


def retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error(provider: Provider, failure: Failure) -> ConnectorError:
    if failure.kind is FailureKind.auth:
        return ConnectorAuthError(provider, failure.message)
    if failure.kind is FailureKind.rate_limited:
        return ConnectorRateLimitedError(provider, failure.message, failure.retry_after)
    if failure.kind is FailureKind.transient:
        return ConnectorUnavailableError(provider, failure.message)
    if failure.kind is FailureKind.request:
        return ConnectorRequestError(provider, failure.message)
    return ConnectorResponseError(provider, failure.message)


class _Retryable(Exception):
    """A failure worth another attempt (rate limited, transient) and how long to wait first."""

    def __init__(self, failure: Failure, wait: float) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.wait = wait


async def _attempt(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: Provider,
    classify: Classifier,
    policy: RetryPolicy,
    number: int,
) -> httpx.Response:
    name = provider.value.replace("_", " ")
    try:
        response = await client.send(request)
    except httpx.TimeoutException:
        failure = Failure(FailureKind.transient, f"{name} did not answer in time")
    except httpx.TransportError:
        failure = Failure(FailureKind.transient, f"{name} could not be reached")
    else:
        classified = classify(response)
        if classified is None:
            return response
        failure = classified
    if failure.kind not in (FailureKind.rate_limited, FailureKind.transient):
        raise _error(provider, failure)
    wait = failure.retry_after
    if wait is None:
        wait = policy.base_delay * 2 ** (number - 1) * (1 + random.random() / 4)  # noqa: S311
    raise _Retryable(failure, wait)


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: Provider,
    classify: Classifier,
    policy: RetryPolicy = RetryPolicy(),
) -> httpx.Response:
    """Send ``request``; return the successful response or raise a ``ConnectorError``.

    A wait longer than ``policy.max_wait`` ends the retries at once (the service's hint, or the
    doubling backoff): the caller hears the failure and when to come back.
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=lambda state: state.outcome.exception().wait,  # type: ignore[union-attr]
        retry=retry_if_exception(
            lambda exc: isinstance(exc, _Retryable) and exc.wait <= policy.max_wait
        ),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await _attempt(
                    client,
                    request,
                    provider=provider,
                    classify=classify,
                    policy=policy,
                    number=attempt.retry_state.attempt_number,
                )
    except _Retryable as exc:
        raise _error(provider, exc.failure) from None
    raise AssertionError("unreachable")  # pragma: no cover


def json_body(response: httpx.Response, provider: Provider) -> object:
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorResponseError(
            provider, f"{provider.value} answered something that is not JSON"
        ) from exc
