"""Is a stored credential usable? Each provider's cheapest authenticated call says.

A check never raises: it answers a status (healthy, invalid, rate_limited, unreachable, or
unchecked where opshub has no check for the provider yet) and a short detail without secrets.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.credentials.models import Health, Provider
from opshub.credentials.store import SecretStore
from opshub.db.engine import tenant_transaction

CHECK_TIMEOUT = 10.0
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class CheckResult:
    status: Health
    detail: str | None = None


def _from_status(code: int) -> CheckResult:
    if code < 300:
        return CheckResult(Health.healthy)
    if code in (401, 403):
        return CheckResult(Health.invalid, f"the provider refused the key ({code})")
    if code == 429:
        return CheckResult(Health.rate_limited, "the provider is rate limiting this key")
    return CheckResult(Health.unreachable, f"the provider answered {code}")


def _model_list_request(
    provider: Provider, secret: dict[str, Any], settings: Settings
) -> tuple[str, dict[str, str]] | None:
    if provider is Provider.openai:
        return f"{settings.openai_base_url}/models", {
            "Authorization": f"Bearer {secret['api_key']}"
        }
    if provider is Provider.anthropic:
        return f"{settings.anthropic_base_url}/v1/models", {
            "x-api-key": secret["api_key"],
            "anthropic-version": ANTHROPIC_VERSION,
        }
    if provider is Provider.openai_compatible:
        headers = {"Authorization": f"Bearer {secret['api_key']}"} if "api_key" in secret else {}
        return f"{str(secret['base_url']).rstrip('/')}/models", headers
    return None


async def check(
    client: httpx.AsyncClient, *, provider: Provider, secret: dict[str, Any], settings: Settings
) -> CheckResult:
    request = _model_list_request(provider, secret, settings)
    if request is None:
        return CheckResult(Health.unchecked, f"opshub has no check for {provider.value} yet")
    url, headers = request
    try:
        response = await client.get(url, headers=headers, timeout=CHECK_TIMEOUT)
    except httpx.HTTPError as exc:
        return CheckResult(Health.unreachable, f"no answer: {type(exc).__name__}")
    return _from_status(response.status_code)


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
    async with tenant_transaction(pool, tenant_id) as conn:
        secret = await credentials_service.read_secret(
            conn, store=store, tenant_id=tenant_id, provider=provider
        )
    if secret is None:
        return CheckResult(Health.unchecked, "no credential is stored")
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
        targets = await conn.fetch("SELECT tenant_id, provider FROM credentials")
    limit = asyncio.Semaphore(concurrency)
    counts = dict.fromkeys(Health, 0)

    async def one(tenant_id: uuid.UUID, provider: Provider) -> None:
        # Jitter spreads the checks of one provider's keys instead of firing them in a burst.
        await asyncio.sleep(random.uniform(0, jitter_seconds))  # noqa: S311 - not for secrets
        async with limit:
            result = await check_and_record(
                pool,
                client,
                store=store,
                settings=settings,
                tenant_id=tenant_id,
                provider=provider,
                on_change=on_change,
            )
        counts[result.status] += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        await asyncio.gather(*(one(row["tenant_id"], Provider(row["provider"])) for row in targets))
    return counts
