"""Checking stored credentials: one on demand, or all of them with bounded concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import structlog

from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.credentials.checks import CHECKS, CheckResult
from opshub.credentials.errors import CredentialStoreError
from opshub.credentials.models import Health, Provider
from opshub.credentials.schemas import CredentialRead
from opshub.credentials.store import SecretStore
from opshub.db.engine import tenant_transaction
from opshub.errors import DomainError, RateLimitedError
from opshub.outbound import guarded_client

log = structlog.get_logger(__name__)

CHECK_TIMEOUT = 10.0
CHECK_RETRY_AFTER_SECONDS = int(CHECK_TIMEOUT)


async def check(
    client: httpx.AsyncClient, *, provider: Provider, secret: dict[str, Any], settings: Settings
) -> CheckResult:
    """Never raises: a provider that does not answer, or answers nonsense, is unreachable."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await CHECKS[provider](client, secret, settings)
    except (httpx.HTTPError, TimeoutError) as exc:
        return CheckResult(Health.unreachable, f"no answer: {type(exc).__name__}")
    except (ValueError, KeyError, AttributeError) as exc:
        return CheckResult(Health.unreachable, f"an answer opshub can't read: {type(exc).__name__}")


class OutboundChecks:
    """Credential checks a tenant may have in flight at once: one more is refused at once, so a
    tenant checking against servers that never answer can't pile up work for everyone else."""

    def __init__(self, *, per_tenant: int) -> None:
        self._per_tenant = per_tenant
        self._in_flight: Counter[uuid.UUID] = Counter()

    @contextlib.asynccontextmanager
    async def slot(self, tenant_id: uuid.UUID) -> AsyncIterator[None]:
        if self._in_flight[tenant_id] >= self._per_tenant:
            raise RateLimitedError(
                f"this tenant has {self._per_tenant} credential checks in flight; try again "
                "when they have answered",
                retry_after=CHECK_RETRY_AFTER_SECONDS,
            )
        self._in_flight[tenant_id] += 1
        try:
            yield
        finally:
            self._in_flight[tenant_id] -= 1
            if not self._in_flight[tenant_id]:
                del self._in_flight[tenant_id]


async def check_stored(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    *,
    store: SecretStore,
    settings: Settings,
    tenant_id: uuid.UUID,
    provider: Provider,
) -> CredentialRead:
    """Check the stored credential and record the outcome, for the API's save and check-now.

    Each database step is a short transaction of its own: no connection is held while the
    provider answers (a slow or silent one would otherwise take the pool from every tenant).
    A secret store that can't be read is the caller's error (``CredentialStoreError``).
    """
    async with tenant_transaction(pool, tenant_id) as conn:
        secret = await credentials_service.read_secret(
            conn, store=store, tenant_id=tenant_id, provider=provider
        )
    if secret is not None:
        result = await check(client, provider=provider, secret=secret, settings=settings)
        async with tenant_transaction(pool, tenant_id) as conn:
            await credentials_service.record_health(
                conn,
                tenant_id=tenant_id,
                provider=provider,
                status=result.status,
                detail=result.detail,
                checked_at=datetime.now(UTC),
            )
    async with tenant_transaction(pool, tenant_id) as conn:
        return await credentials_service.get_credential(
            conn, tenant_id=tenant_id, provider=provider
        )


async def check_and_record(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    *,
    store: SecretStore,
    settings: Settings,
    tenant_id: uuid.UUID,
    provider: Provider,
    on_change: Callable[[uuid.UUID, Provider, Health, Health], Awaitable[None]] | None = None,
) -> CheckResult:
    """Check one stored credential and record the outcome; ``on_change`` hears of a new status."""
    secret: dict[str, Any] | None = None
    unreadable: CredentialStoreError | None = None
    try:
        async with tenant_transaction(pool, tenant_id) as conn:
            secret = await credentials_service.read_secret(
                conn, store=store, tenant_id=tenant_id, provider=provider
            )
    except CredentialStoreError as exc:
        unreadable = exc
    if secret is None and unreadable is None:
        return CheckResult(Health.unchecked, "no credential is stored")
    if secret is None:
        # Can't be checked and can't be used: the tenant has to store it again.
        result = CheckResult(Health.invalid, f"the stored secret can't be read: {unreadable}")
    else:
        # The check runs outside any transaction: a slow provider must not hold a connection.
        result = await check(client, provider=provider, secret=secret, settings=settings)
    async with tenant_transaction(pool, tenant_id) as conn:
        previous = await credentials_service.record_health(
            conn,
            tenant_id=tenant_id,
            provider=provider,
            status=result.status,
            detail=result.detail,
            checked_at=datetime.now(UTC),
        )
    if on_change is not None and previous is not None and previous is not result.status:
        await on_change(tenant_id, provider, previous, result.status)
    return result


async def sweep(
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    *,
    store: SecretStore,
    settings: Settings,
    concurrency: int = 20,
    jitter_seconds: float = 0.0,
    on_change: Callable[[uuid.UUID, Provider, Health, Health], Awaitable[None]] | None = None,
) -> dict[Health, int]:
    """Check every stored credential of every tenant, at most ``concurrency`` at a time."""
    async with owner_pool.acquire() as conn:
        targets = await credentials_service.all_credentials(conn)
    limit = asyncio.Semaphore(concurrency)
    counts = dict.fromkeys(Health, 0)

    async def one(tenant_id: uuid.UUID, provider: Provider) -> None:
        # Jitter spreads the checks of one provider's keys instead of firing them in a burst.
        await asyncio.sleep(random.uniform(0, jitter_seconds))  # noqa: S311 - not for secrets
        async with limit:
            try:
                result = await check_and_record(
                    pool,
                    client,
                    store=store,
                    settings=settings,
                    tenant_id=tenant_id,
                    provider=provider,
                    on_change=on_change,
                )
            except (OSError, asyncpg.PostgresError, DomainError) as exc:
                # One credential's trouble is that credential's; the sweep goes on.
                log.warning(
                    "credential check failed",
                    tenant_id=str(tenant_id),
                    provider=provider.value,
                    error=type(exc).__name__,
                )
                counts[Health.unreachable] += 1
                return
        counts[result.status] += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with guarded_client(settings, limits=limits) as client:
        await asyncio.gather(*(one(row["tenant_id"], Provider(row["provider"])) for row in targets))
    return counts
