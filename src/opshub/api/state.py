"""What the API process holds for its lifetime: engines, Redis, the login limiter, the JWT key."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import asyncpg
import httpx
import structlog
from redis.asyncio import Redis

from opshub.auth.admission import CredentialAdmission
from opshub.auth.crypto import PasswordChecks
from opshub.auth.ratelimit import FallbackAttemptCounter, LocalAttemptCounter, LoginRateLimiter
from opshub.auth.request_limit import TenantRequestLimiter
from opshub.config import RequestRate, Settings
from opshub.credentials.health import OutboundChecks
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import SecretStore, open_secret_store
from opshub.db.engine import DatabaseUrls, create_pool
from opshub.db.redis import open_redis
from opshub.keyfile import read_or_create_key_file
from opshub.memory.embedders import Embedders
from opshub.memory.indexes import IndexBuilder
from opshub.observability.sampler import POOLS, sample_forever
from opshub.outbound import guarded_client
from opshub.runtime.credential_monitor import run_monitor
from opshub.runtime.live import LiveEvents, LocalLiveEvents, RedisLiveEvents
from opshub.runtime.loops import Loops, stop_all
from opshub.runtime.relay import OutboxRelay
from opshub.runtime.scheduler import Scheduler, sweep_memory_indexes
from opshub.runtime.tenant_events import TenantEventWakeups

log = structlog.get_logger(__name__)


@dataclass
class AppState:
    settings: Settings
    app_pool: asyncpg.Pool
    owner_pool: asyncpg.Pool
    login_pool: asyncpg.Pool
    redis: Redis | None
    limiter: LoginRateLimiter
    password_checks: PasswordChecks
    requests: TenantRequestLimiter
    admission: CredentialAdmission
    outbound_checks: OutboundChecks
    jwt_secret: bytes
    credential_store: SecretStore
    resolver: CredentialResolver
    http: httpx.AsyncClient
    live: LiveEvents
    embedders: Embedders
    memory_indexes: IndexBuilder
    tenant_events: TenantEventWakeups
    loops: Loops = field(default_factory=Loops)

    @classmethod
    async def open(
        cls, settings: Settings, urls: DatabaseUrls, *, run_workers: bool = False
    ) -> AppState:
        """``run_workers``: also run a worker and a scheduler in this process (``opshub serve``)."""
        redis = (
            open_redis(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)
            if settings.redis_url
            else None
        )
        counter = FallbackAttemptCounter(redis) if redis else LocalAttemptCounter()
        jwt_secret = (
            settings.jwt_secret.get_secret_value().encode()
            if settings.jwt_secret
            else read_or_create_key_file(settings.data_dir / "jwt_secret")
        )
        app_pool = await create_pool(urls.app, size=settings.database_pool_size)
        # The sign-in lookup only: its role may call nothing else (migration 0017).
        login_pool = await create_pool(urls.login, size=2)
        # The relay, and with workers their listener, claims and event writes.
        owner_pool = await create_pool(urls.owner, size=10 if run_workers else 3)
        POOLS.watch("app", app_pool)
        POOLS.watch("login", login_pool)
        POOLS.watch("owner", owner_pool)
        store = open_secret_store(settings)
        resolver = CredentialResolver(pool=app_pool, store=store, settings=settings, redis=redis)
        resolver.start()
        state = cls(
            settings=settings,
            app_pool=app_pool,
            owner_pool=owner_pool,
            login_pool=login_pool,
            redis=redis,
            limiter=LoginRateLimiter(
                counter,
                per_minute=settings.login_attempts_per_minute,
                per_address=settings.login_attempts_per_minute_per_address,
            ),
            password_checks=PasswordChecks(concurrency=settings.password_check_concurrency),
            admission=CredentialAdmission(per_credential=settings.credential_requests_in_flight),
            outbound_checks=OutboundChecks(per_tenant=settings.tenant_credential_checks),
            requests=TenantRequestLimiter(
                redis,
                default=RequestRate(
                    per_second=settings.tenant_requests_per_second,
                    burst=settings.tenant_request_burst,
                ),
                by_plan=settings.tenant_request_limits_by_plan,
            ),
            jwt_secret=jwt_secret,
            credential_store=store,
            resolver=resolver,
            http=guarded_client(
                allow_internal=settings.allow_internal_urls,
                allowed=settings.allowed_private_networks,
            ),
            live=RedisLiveEvents(redis) if redis else LocalLiveEvents(),
            embedders=Embedders(resolver=resolver, settings=settings),
            memory_indexes=IndexBuilder(
                owner_pool=owner_pool, threshold=settings.memory_index_rows
            ),
            tenant_events=TenantEventWakeups(app_pool),
        )
        if redis is not None:
            relay = OutboxRelay(owner_pool=state.owner_pool, redis=redis)
            state.loops.start("outbox.relay", relay.run)
        if settings.credential_check_minutes > 0:
            monitor = partial(
                run_monitor,
                app_pool=state.app_pool,
                owner_pool=state.owner_pool,
                store=store,
                settings=settings,
                resolver=resolver,
            )
            state.loops.start("credentials.monitor", monitor)
        if run_workers:
            from opshub.runtime.worker import Worker

            worker = Worker(
                owner_pool=state.owner_pool,
                app_pool=state.app_pool,
                resolver=resolver,
                live=state.live,
                settings=settings,
                database_url=urls.owner,
                embedders=state.embedders,
                memory_indexes=state.memory_indexes,
                loops=state.loops.nested("worker"),
            )
            state.loops.start("worker", worker.run)
            state.loops.start("scheduler", Scheduler(owner_pool=state.owner_pool).run)
            sweep = partial(
                sweep_memory_indexes,
                owner_pool,
                threshold=settings.memory_index_rows,
                every_seconds=settings.memory_index_sweep_seconds,
            )
            state.loops.start("memory.index_sweep", sweep)
            state.loops.start("metrics.sampler", partial(sample_forever, owner_pool))
        return state

    async def close(self) -> None:
        await self.memory_indexes.stop()
        grace = self.settings.worker_shutdown_grace_seconds + 10
        if not await stop_all(self.loops.tasks, grace_seconds=grace):
            # A loop stuck in a call: don't let shutdown wait on its connection for ever.
            log.warning("background tasks outlived shutdown; closing their connections")
            self.app_pool.terminate()
            self.owner_pool.terminate()
        if isinstance(self.live, RedisLiveEvents):
            await self.live.close()
        await self.tenant_events.close()
        await self.resolver.stop()
        self.password_checks.close()
        await self.http.aclose()
        if not self.app_pool.is_closing():
            await self.app_pool.close()
        if not self.owner_pool.is_closing():
            await self.owner_pool.close()
        await self.login_pool.close()
        if self.redis is not None:
            await self.redis.aclose()
