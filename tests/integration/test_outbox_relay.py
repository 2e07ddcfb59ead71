"""Domain events reach the Redis Stream `opshub.events` in order, once each, across Redis outages.

A Redis of their own (a real redis-server on a free port) lets these tests stop and restart it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from opshub.credentials import service as credentials_service
from opshub.credentials.models import Health, Provider
from opshub.db.engine import tenant_transaction
from opshub.loops import stop_all
from opshub.outbox import service as outbox
from opshub.runtime.relay import OutboxRelay
from tests.conftest import TenantHandle
from tests.fakes.server import RedisProcess


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_process: RedisProcess) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_process.url, socket_connect_timeout=1)
    yield client
    await client.aclose()


@pytest.fixture
def relay(owner_pool: asyncpg.Pool, redis: Redis) -> OutboxRelay:
    return OutboxRelay(owner_pool=owner_pool, redis=redis)


async def emit(app_pool: asyncpg.Pool, tenant: TenantHandle, *numbers: int) -> None:
    async with tenant_transaction(app_pool, tenant.id) as conn:
        for n in numbers:
            await outbox.emit(conn, tenant_id=tenant.id, event_type="test.event", data={"n": n})


async def stream_of(redis: Redis, tenant: TenantHandle) -> list[dict[str, object]]:
    entries = await redis.xrange(outbox.STREAM)
    events = [
        {key.decode(): value.decode() for key, value in fields.items()} for _, fields in entries
    ]
    return [e for e in events if e["tenant_id"] == str(tenant.id)]


def numbers(events: list[dict[str, object]]) -> list[int]:
    return [orjson.loads(str(e["data"]))["n"] for e in events]


async def test_events_reach_the_stream_in_order_with_the_contracted_fields(
    app_pool: asyncpg.Pool, relay: OutboxRelay, redis: Redis, tenant_a: TenantHandle
) -> None:
    await emit(app_pool, tenant_a, 1, 2, 3)

    await relay.deliver_pending()
    events = await stream_of(redis, tenant_a)

    assert numbers(events) == [1, 2, 3]
    assert set(events[0]) == {"event_type", "tenant_id", "data", "ts"}
    assert events[0]["event_type"] == "test.event"
    assert datetime.fromisoformat(str(events[0]["ts"])).tzinfo is not None


async def test_an_event_whose_transaction_rolled_back_is_never_delivered(
    app_pool: asyncpg.Pool, relay: OutboxRelay, redis: Redis, tenant_a: TenantHandle
) -> None:
    with pytest.raises(RuntimeError):
        async with tenant_transaction(app_pool, tenant_a.id) as conn:
            await outbox.emit(conn, tenant_id=tenant_a.id, event_type="test.event", data={"n": 9})
            raise RuntimeError("the change failed")
    await emit(app_pool, tenant_a, 10)

    await relay.deliver_pending()

    assert numbers(await stream_of(redis, tenant_a)) == [10]


async def test_with_redis_down_events_wait_and_arrive_once_each_when_it_is_back(
    app_pool: asyncpg.Pool,
    relay: OutboxRelay,
    redis: Redis,
    redis_process: RedisProcess,
    tenant_a: TenantHandle,
) -> None:
    await emit(app_pool, tenant_a, 1)
    await relay.deliver_pending()
    redis_process.stop()

    await emit(app_pool, tenant_a, 2, 3)  # the changes go on while Redis is away
    with pytest.raises((RedisError, OSError)):
        await relay.deliver_pending()
    redis_process.start()
    await relay.deliver_pending()
    await relay.deliver_pending()

    # A restarted Redis without persistence starts empty: what it holds is what came after.
    assert numbers(await stream_of(redis, tenant_a)) == [2, 3]


async def test_a_relay_that_died_after_sending_does_not_send_twice(
    app_pool: asyncpg.Pool,
    relay: OutboxRelay,
    redis: Redis,
    tenant_a: TenantHandle,
) -> None:
    await emit(app_pool, tenant_a, 1, 2)

    original = asyncpg.connection.Connection.execute

    async def dies_before_marking(self: asyncpg.Connection, query: str, *args: object) -> str:
        if query.startswith("UPDATE outbox"):
            raise ConnectionResetError("the relay died between Redis and the database")
        return await original(self, query, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncpg.connection.Connection, "execute", dies_before_marking)
        with pytest.raises(ConnectionResetError):
            await relay.deliver_pending()
    await relay.deliver_pending()

    assert numbers(await stream_of(redis, tenant_a)) == [1, 2]


async def test_two_relays_at_once_deliver_each_event_once(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, redis: Redis, tenant_a: TenantHandle
) -> None:
    await emit(app_pool, tenant_a, *range(50))
    first = OutboxRelay(owner_pool=owner_pool, redis=redis, batch=5)
    second = OutboxRelay(owner_pool=owner_pool, redis=redis, batch=5)

    await asyncio.gather(first.deliver_pending(), second.deliver_pending())
    await first.deliver_pending()

    assert numbers(await stream_of(redis, tenant_a)) == list(range(50))


async def outbox_listeners(owner_pool: asyncpg.Pool) -> int:
    """Connections of this server listening on the outbox channel (the owner sees them all)."""
    count: int = await owner_pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN \"opshub_outbox\"'"
    )
    return count


async def test_the_running_relay_delivers_as_soon_as_an_event_commits(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    relay: OutboxRelay,
    redis: Redis,
    tenant_a: TenantHandle,
) -> None:
    before = await outbox_listeners(owner_pool)
    running = asyncio.create_task(relay.run(poll_seconds=60))
    try:
        started = time.monotonic()
        while await outbox_listeners(owner_pool) == before:
            assert time.monotonic() - started < 30, "the relay never listened"
            await asyncio.sleep(0.02)
        await emit(app_pool, tenant_a, 7)
        started = time.monotonic()
        while not await stream_of(redis, tenant_a):
            assert time.monotonic() - started < 5, "the relay never woke"
            await asyncio.sleep(0.02)
        woke_after = time.monotonic() - started
    finally:
        # As the process stops its loops: a cancel that lands inside a delivery is swallowed by
        # the client library, and the loop then ends of its own accord instead of raising.
        assert await stop_all([running], grace_seconds=10)

    assert woke_after < 1  # NOTIFY, not the 60 s poll


async def test_a_change_of_credential_health_is_a_domain_event(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with owner_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO credentials (tenant_id, provider, fingerprint, last4, backend, status)"
            " VALUES ($1, 'saleor', 'fp', 'abcd', 'vault', 'healthy')",
            tenant_a.id,
        )
    for status in (Health.invalid, Health.invalid, Health.healthy):
        async with tenant_transaction(app_pool, tenant_a.id) as conn:
            await credentials_service.record_health(
                conn,
                tenant_id=tenant_a.id,
                provider=Provider.saleor,
                status=status,
                detail=None,
                checked_at=datetime.now(UTC),
            )

    async with owner_pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT data FROM outbox WHERE tenant_id = $1 AND event_type = $2 ORDER BY id",
            tenant_a.id,
            "credential.health_changed",
        )
    changes = [(r["data"]["previous"], r["data"]["status"]) for r in rows]
    assert changes == [("healthy", "invalid"), ("invalid", "healthy")]


async def test_a_tenant_can_only_emit_its_own_events(
    app_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(app_pool, tenant_a.id) as conn:
            await outbox.emit(conn, tenant_id=tenant_b.id, event_type="forged", data={})
