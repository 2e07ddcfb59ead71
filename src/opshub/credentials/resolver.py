"""Which key pays for a call: the tenant's own (BYOK), else the platform's where the plan allows it.

Resolutions are cached briefly in the process. A change to a credential invalidates the entry
here at once and, through Redis pub/sub (or without Redis PostgreSQL NOTIFY), in every other
process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.credentials.errors import CredentialMissingError
from opshub.credentials.models import Health, Provider, Source
from opshub.credentials.store import SecretStore
from opshub.db.bus import PgBus
from opshub.db.engine import tenant_transaction

INVALIDATION_CHANNEL = "opshub:credentials:changed"
BUS_CHANNEL = "opshub_credentials_changed"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ResolvedCredential:
    provider: Provider
    source: Source
    fingerprint: str
    secret: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        # The secret never reaches a log line or an exception through this object.
        return f"ResolvedCredential({self.provider.value}, {self.source.value}, {self.fingerprint})"


class CredentialResolver:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        store: SecretStore,
        settings: Settings,
        redis: Redis | None = None,
        bus: PgBus | None = None,
    ) -> None:
        """``bus``: without Redis, how other processes hear of changes (none: one process)."""
        self._pool = pool
        self._store = store
        self._settings = settings
        self._redis = redis
        self._cache: dict[tuple[uuid.UUID, Provider], tuple[float, ResolvedCredential]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._bus = None if redis is not None else bus
        if self._bus is not None:
            self._bus.subscribe(BUS_CHANNEL, self._forget_message)
            self._bus.on_gap(self._cache.clear)

    @property
    def store(self) -> SecretStore:
        """The store behind it, for secrets kept under other names (an MCP server's)."""
        return self._store

    async def resolve(self, *, tenant_id: uuid.UUID, provider: Provider) -> ResolvedCredential:
        key = (tenant_id, provider)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        resolved = await self._load(tenant_id, provider)
        self._cache[key] = (time.monotonic() + self._settings.credential_cache_seconds, resolved)
        return resolved

    async def _load(self, tenant_id: uuid.UUID, provider: Provider) -> ResolvedCredential:
        async with tenant_transaction(self._pool, tenant_id) as conn:
            secret = await credentials_service.read_secret(
                conn, store=self._store, tenant_id=tenant_id, provider=provider
            )
            if secret is not None:
                fingerprint, _ = credentials_service.identify(provider, secret)
                return ResolvedCredential(provider, Source.byok, fingerprint, secret)
            plan = await credentials_service.QUERIES["get_plan"].fetchval(conn, tenant_id=tenant_id)
        platform = credentials_service.platform_secret(self._settings, provider)
        if platform is not None and plan in self._settings.platform_key_plans:
            fingerprint, _ = credentials_service.identify(provider, platform)
            return ResolvedCredential(provider, Source.platform, fingerprint, platform)
        raise CredentialMissingError(
            f"no {provider.value} credential: store one with PUT /v1/credentials/{provider.value}"
            + ("" if platform is None else f" (plan {plan!r} does not include platform keys)")
        )

    async def mark_invalid(self, *, tenant_id: uuid.UUID, provider: Provider, detail: str) -> None:
        """The provider refused the tenant's key during a run: say so where the tenant looks."""
        async with tenant_transaction(self._pool, tenant_id) as conn:
            await credentials_service.record_health(
                conn,
                tenant_id=tenant_id,
                provider=provider,
                status=Health.invalid,
                detail=detail,
                checked_at=datetime.now(UTC),
            )
        await self.changed(tenant_id=tenant_id, provider=provider)

    def forget(self, *, tenant_id: uuid.UUID, provider: Provider) -> None:
        self._cache.pop((tenant_id, provider), None)

    async def changed(self, *, tenant_id: uuid.UUID, provider: Provider) -> None:
        """A credential was stored, deleted or found invalid: drop it here and everywhere."""
        self.forget(tenant_id=tenant_id, provider=provider)
        if self._redis is not None:
            with contextlib.suppress(OSError, RedisError):
                await self._redis.publish(INVALIDATION_CHANNEL, f"{tenant_id}:{provider.value}")
        elif self._bus is not None:
            await self._bus.notify(BUS_CHANNEL, [f"{tenant_id}:{provider.value}"])

    def start(self) -> None:
        """Listen for other processes' changes (with Redis; one process needs no listener)."""
        if self._redis is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(self._redis))

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self, redis: Redis) -> None:
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(INVALIDATION_CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._forget_message(message["data"])
            except (OSError, RedisError) as exc:
                # Entries expire on their own meanwhile; resubscribe once Redis is back.
                self._cache.clear()
                log.warning("credential invalidations paused", error=type(exc).__name__)
                await asyncio.sleep(1)

    def _forget_message(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        tenant, _, provider = text.partition(":")
        with contextlib.suppress(ValueError):
            self.forget(tenant_id=uuid.UUID(tenant), provider=Provider(provider))
