"""The one composition root: every opshub process is assembled here and nowhere else.

``Hub`` is what every process shares: the settings, the database pools, Redis, the secret store
and the credential resolver, live events, the embedders and the memory index builder, and the
background loops. A process opens one and starts the loops it runs: the worker, the scheduler
(with the memory index sweep and the metrics sampler), the outbox relay, the credential monitor.
``create_app`` puts the API on a hub (``opshub api``, ``opshub serve``, the tests),
``run_worker`` and ``run_scheduler`` are ``opshub worker`` and ``opshub scheduler``.

Nothing imports this module but the command line and the tests: the API is handed its state and
never imports the worker.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import asyncpg
import structlog
from fastapi import FastAPI
from redis.asyncio import Redis

from opshub.api.app import create_api
from opshub.api.state import AppState
from opshub.auth.admission import CredentialAdmission
from opshub.auth.crypto import PasswordChecks
from opshub.auth.ratelimit import (
    AttemptCounter,
    FallbackAttemptCounter,
    LoginRateLimiter,
    SharedAttemptCounter,
)
from opshub.auth.request_limit import TenantRequestLimiter
from opshub.config import RequestRate, Settings, get_settings
from opshub.credentials.health import OutboundChecks
from opshub.credentials.monitor import run_monitor
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import SecretStore, open_secret_store
from opshub.db.bus import PgBus
from opshub.db.engine import DatabaseUrls, create_pool, resolve_database_urls
from opshub.db.redis import open_redis
from opshub.keyfile import read_or_create_key_file
from opshub.loops import Loops, stop_all
from opshub.memory.embedders import Embedders
from opshub.memory.indexes import IndexBuilder
from opshub.observability.sampler import POOLS, sample_forever
from opshub.outbound import guarded_client
from opshub.runtime.capacity import crews_per_worker
from opshub.runtime.live import LiveEvents, PgLiveEvents, RedisLiveEvents
from opshub.runtime.relay import OutboxRelay
from opshub.runtime.scheduler import Scheduler, sweep_memory_indexes
from opshub.runtime.tenant_events import TenantEventWakeups

log = structlog.get_logger(__name__)


@dataclass
class Hub:
    settings: Settings
    urls: DatabaseUrls
    app_pool: asyncpg.Pool
    owner_pool: asyncpg.Pool
    redis: Redis | None
    store: SecretStore
    resolver: CredentialResolver
    live: LiveEvents
    embedders: Embedders
    memory_indexes: IndexBuilder
    login_attempts: AttemptCounter
    # Without Redis, what the hub's processes share goes through PostgreSQL NOTIFY instead.
    bus: PgBus | None
    loops: Loops = field(default_factory=Loops)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        urls: DatabaseUrls,
        *,
        app_pool_size: int,
        owner_pool_size: int,
        listen: bool = True,
    ) -> Hub:
        """``listen``: hear the other processes' live events, login attempts and credential
        changes (a process that only runs the scheduler needs none of them, nor a connection
        for them)."""
        redis = (
            open_redis(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)
            if settings.redis_url
            else None
        )
        # Neither pool's users leave anything on a connection past its transaction but LISTENs
        # and the owner's session locks, which they note: a release resets only those, not
        # every claim's and event batch's connection (a round trip on each, before the writer
        # could publish what it had stored).
        app_pool = await create_pool(urls.app, size=app_pool_size, transactions_only=True)
        owner_pool = await create_pool(urls.owner, size=owner_pool_size, transactions_only=True)
        POOLS.watch("app", app_pool)
        POOLS.watch("owner", owner_pool)
        # Without Redis, the hub's processes share live events, login attempts and credential
        # changes through PostgreSQL; the bus listens for what was subscribed before it starts.
        bus: PgBus | None = None
        live: LiveEvents
        login_attempts: AttemptCounter
        if redis is not None:
            live, login_attempts = RedisLiveEvents(redis), FallbackAttemptCounter(redis)
        else:
            bus = PgBus(url=urls.owner, pool=owner_pool)
            live, login_attempts = PgLiveEvents(bus), SharedAttemptCounter(bus)
        store = open_secret_store(settings)
        resolver = CredentialResolver(
            pool=app_pool, store=store, settings=settings, redis=redis, bus=bus
        )
        if listen:
            if bus is not None:
                await bus.start()
            resolver.start()  # another process's change of a credential drops it here too
        return cls(
            settings=settings,
            urls=urls,
            app_pool=app_pool,
            owner_pool=owner_pool,
            redis=redis,
            store=store,
            resolver=resolver,
            live=live,
            embedders=Embedders(resolver=resolver, settings=settings),
            memory_indexes=IndexBuilder(
                owner_pool=owner_pool, threshold=settings.memory_index_rows
            ),
            login_attempts=login_attempts,
            bus=bus,
        )

    def start_relay(self) -> None:
        """Domain events from the outbox to the Redis Stream (none to go to without Redis)."""
        if self.redis is not None:
            relay = OutboxRelay(owner_pool=self.owner_pool, redis=self.redis)
            self.loops.start("outbox.relay", relay.run)

    def start_credential_monitor(self) -> None:
        if self.settings.credential_check_minutes > 0:
            monitor = partial(
                run_monitor,
                app_pool=self.app_pool,
                owner_pool=self.owner_pool,
                store=self.store,
                settings=self.settings,
                resolver=self.resolver,
            )
            self.loops.start("credentials.monitor", monitor)

    def start_worker(self, *, concurrency: int | None = None) -> None:
        # Imported here: the worker brings CrewAI, which a process serving only the API never
        # loads (its memory and start-up time).
        from opshub.runtime.worker import Worker

        worker = Worker(
            owner_pool=self.owner_pool,
            app_pool=self.app_pool,
            resolver=self.resolver,
            live=self.live,
            settings=self.settings,
            database_url=self.urls.owner,
            concurrency=concurrency,
            embedders=self.embedders,
            memory_indexes=self.memory_indexes,
            loops=self.loops.nested("worker"),
        )
        self.loops.start("worker", worker.run)

    def start_scheduler(self) -> None:
        """The scheduler, the memory index sweep and the queue and credential gauges (any one
        process with a scheduler will do for those)."""
        self.loops.start("scheduler", Scheduler(owner_pool=self.owner_pool).run)
        sweep = partial(
            sweep_memory_indexes,
            self.owner_pool,
            threshold=self.settings.memory_index_rows,
            every_seconds=self.settings.memory_index_sweep_seconds,
        )
        self.loops.start("memory.index_sweep", sweep)
        self.loops.start("metrics.sampler", partial(sample_forever, self.owner_pool))

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
        await self.resolver.stop()
        if self.bus is not None:
            await self.bus.close()
        if not self.app_pool.is_closing():
            await self.app_pool.close()
        if not self.owner_pool.is_closing():
            await self.owner_pool.close()
        if self.redis is not None:
            await self.redis.aclose()


async def open_api_state(hub: Hub) -> AppState:
    """What the API holds on top of the hub: the sign-in pool, limiters, the JWT key."""
    settings = hub.settings
    jwt_secret = (
        settings.jwt_secret.get_secret_value().encode()
        if settings.jwt_secret
        else read_or_create_key_file(settings.data_dir / "jwt_secret")
    )
    # The sign-in lookup only: its role may call nothing else (migration 0017).
    login_pool = await create_pool(hub.urls.login, size=2)
    POOLS.watch("login", login_pool)
    return AppState(
        settings=settings,
        app_pool=hub.app_pool,
        owner_pool=hub.owner_pool,
        login_pool=login_pool,
        redis=hub.redis,
        limiter=LoginRateLimiter(
            hub.login_attempts,
            per_minute=settings.login_attempts_per_minute,
            per_address=settings.login_attempts_per_minute_per_address,
        ),
        password_checks=PasswordChecks(concurrency=settings.password_check_concurrency),
        admission=CredentialAdmission(per_credential=settings.credential_requests_in_flight),
        outbound_checks=OutboundChecks(per_tenant=settings.tenant_credential_checks),
        requests=TenantRequestLimiter(
            hub.redis,
            default=RequestRate(
                per_second=settings.tenant_requests_per_second,
                burst=settings.tenant_request_burst,
            ),
            by_plan=settings.tenant_request_limits_by_plan,
        ),
        jwt_secret=jwt_secret,
        credential_store=hub.store,
        resolver=hub.resolver,
        http=guarded_client(settings),
        live=hub.live,
        embedders=hub.embedders,
        memory_indexes=hub.memory_indexes,
        tenant_events=TenantEventWakeups(hub.app_pool),
        loops=hub.loops,
    )


async def close_api_state(state: AppState) -> None:
    await state.tenant_events.close()
    state.password_checks.close()
    await state.http.aclose()
    await state.login_pool.close()


def create_app(
    settings: Settings | None = None,
    urls: DatabaseUrls | None = None,
    *,
    run_workers: bool = False,
) -> FastAPI:
    """The API on a hub of its own, which also runs the outbox relay and the credential monitor;
    ``run_workers``: a worker and a scheduler too (``opshub serve``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def open_state() -> AsyncIterator[AppState]:
        hub = await Hub.open(
            settings,
            urls or resolve_database_urls(settings),
            app_pool_size=settings.database_pool_size,
            # The relay, and with workers their listener, claims and event writes.
            owner_pool_size=10 if run_workers else 3,
        )
        hub.start_relay()
        hub.start_credential_monitor()
        if run_workers:
            hub.start_worker()
            hub.start_scheduler()
        try:
            state = await open_api_state(hub)
            try:
                yield state
            finally:
                await close_api_state(state)
        finally:
            await hub.close()

    return create_api(settings, open_state)


async def _until_signalled(hub: Hub) -> None:
    """Run ``hub``'s loops until SIGTERM or SIGINT, then stop them gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await hub.close()


async def run_worker(
    settings: Settings, urls: DatabaseUrls, *, concurrency: int | None, schedule: bool = False
) -> None:
    """``opshub worker``: claims and runs tasks until signalled; with ``schedule`` (``opshub
    serve``'s worker processes) it fires due schedules too."""
    # Runs hold a connection only for short statements (tools, outcome), none while a crew waits
    # on its model: the pools stay small however many crews run. The owner pool serves the
    # listener, claims, lease renewals, event writes and webhooks.
    crews = concurrency or crews_per_worker(settings, processes=settings.processes or 1)
    size = min(crews // 2 + 4, 32)
    hub = await Hub.open(settings, urls, app_pool_size=size, owner_pool_size=8)
    hub.start_worker(concurrency=concurrency)
    if schedule:
        hub.start_scheduler()
    await _until_signalled(hub)


async def run_scheduler(settings: Settings, urls: DatabaseUrls) -> None:
    """``opshub scheduler``: fires due schedules until signalled."""
    hub = await Hub.open(settings, urls, app_pool_size=1, owner_pool_size=3, listen=False)
    hub.start_scheduler()
    await _until_signalled(hub)
