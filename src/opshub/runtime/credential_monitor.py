"""The scheduled credential health sweep, run by whichever process wins the lock."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import structlog

from opshub.config import Settings
from opshub.credentials.monitor import sweep_once
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import SecretStore
from opshub.runtime.loops import stop_requested

log = structlog.get_logger(__name__)


async def run_monitor(
    *,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    store: SecretStore,
    settings: Settings,
    resolver: CredentialResolver,
) -> None:
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
