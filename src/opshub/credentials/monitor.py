"""Checks every stored credential on a schedule, from one process at a time.

Any number of opshub processes may run the monitor; a PostgreSQL advisory lock lets one sweep
while the others skip that round. A change of health is recorded with a domain event (see
``credentials.service.record_health``); here it is logged and the cached resolution dropped.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import structlog

from opshub.config import Settings
from opshub.credentials import health
from opshub.credentials.models import Health, Provider
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import SecretStore
from opshub.db import locks
from opshub.loops import stop_requested

# An arbitrary, fixed key: the one lock every opshub process agrees on for the sweep.
SWEEP_LOCK = 0x6F707368_75620001
log = structlog.get_logger(__name__)


async def sweep_once(
    *,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    store: SecretStore,
    settings: Settings,
    resolver: CredentialResolver | None = None,
) -> dict[Health, int] | None:
    """One sweep, unless another process holds the lock (then None)."""

    async def changed(tenant_id: uuid.UUID, provider: Provider, old: Health, new: Health) -> None:
        log.info(
            "credential.health_changed",
            tenant_id=str(tenant_id),
            provider=provider.value,
            previous=old.value,
            status=new.value,
        )
        if resolver is not None:
            await resolver.changed(tenant_id=tenant_id, provider=provider)

    async with owner_pool.acquire() as conn:
        if not await locks.try_lock(conn, key=SWEEP_LOCK):
            return None
        try:
            return await health.sweep(
                app_pool,
                owner_pool,
                store=store,
                settings=settings,
                concurrency=settings.credential_check_concurrency,
                jitter_seconds=settings.credential_check_jitter_seconds,
                on_change=changed,
            )
        finally:
            await locks.unlock(conn, key=SWEEP_LOCK)


async def run_monitor(
    *,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    store: SecretStore,
    settings: Settings,
    resolver: CredentialResolver,
) -> None:
    """Sweep every ``credential_check_minutes``, in whichever process wins the lock."""
    interval = settings.credential_check_minutes * 60
    while not stop_requested():
        # Processes started together don't all try the lock at the same instant.
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 - not for secrets
        try:
            counts = await sweep_once(
                app_pool=app_pool,
                owner_pool=owner_pool,
                store=store,
                settings=settings,
                resolver=resolver,
            )
        except Exception as exc:  # the monitor outlives any one bad sweep
            log.warning("credential sweep failed", error=type(exc).__name__)
            continue
        if counts is not None:
            log.info("credential sweep", **{status.value: n for status, n in counts.items()})
