"""The login rate limiter: in-process, on the real local Redis, and with Redis away."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from opshub.auth.ratelimit import (
    AttemptCounter,
    FallbackAttemptCounter,
    LocalAttemptCounter,
    LoginRateLimiter,
    RedisAttemptCounter,
)
from opshub.errors import RateLimitedError
from tests.conftest import REDIS_URL

PER_MINUTE = 5
PER_ADDRESS = 8
NO_REDIS = "redis://127.0.0.1:9/0"  # nothing listens on the discard port


def unique_email() -> str:
    return f"limit-{uuid.uuid4().hex[:12]}@example.com"


async def start_of_a_fresh_window(needed_seconds: float = 5) -> None:
    """The count resets each minute; don't start a test that could straddle the boundary."""
    remaining = 60 - time.time() % 60
    if remaining < needed_seconds:
        await asyncio.sleep(remaining + 0.2)


@pytest.fixture
async def redis_factory() -> AsyncIterator[Callable[[], Redis]]:
    """New Redis clients on the test database, as separate API processes would have."""
    clients: list[Redis] = []

    def make() -> Redis:
        client = Redis.from_url(REDIS_URL)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(params=["local", "redis", "redis-away"])
async def limiter(
    request: pytest.FixtureRequest, redis_factory: Callable[[], Redis]
) -> AsyncIterator[LoginRateLimiter]:
    """``redis-away``: the API's counter while its Redis doesn't answer."""
    if request.param == "local":
        counter: AttemptCounter = LocalAttemptCounter()
    elif request.param == "redis":
        counter = FallbackAttemptCounter(redis_factory())
    else:
        away = Redis.from_url(NO_REDIS)
        counter = FallbackAttemptCounter(away)
    yield LoginRateLimiter(counter, per_minute=PER_MINUTE, per_address=PER_ADDRESS)
    if request.param == "redis-away":
        await away.aclose()


async def test_many_emails_from_one_address_are_refused_after_the_address_limit(
    limiter: LoginRateLimiter,
) -> None:
    flooding, other = (f"2001:db8::{uuid.uuid4().hex[:4]}" for _ in range(2))
    await start_of_a_fresh_window()
    for _ in range(PER_ADDRESS):
        await limiter.check(unique_email(), address=flooding)
    with pytest.raises(RateLimitedError, match="this address") as refused:
        await limiter.check(unique_email(), address=flooding)

    assert 0 < refused.value.retry_after <= 60
    await limiter.check(unique_email(), address=other)


async def test_the_attempt_after_the_limit_is_refused_with_a_retry_after(
    limiter: LoginRateLimiter,
) -> None:
    email = unique_email()
    await start_of_a_fresh_window()

    for _ in range(PER_MINUTE):
        await limiter.check(email)
    with pytest.raises(RateLimitedError) as refused:
        await limiter.check(email)

    assert 0 < refused.value.retry_after <= 60
    assert refused.value.code == "rate_limited"
    assert refused.value.details == {"retry_after": refused.value.retry_after}
    # It stays refused for the rest of the window.
    with pytest.raises(RateLimitedError):
        await limiter.check(email)


async def test_the_limit_is_per_email(limiter: LoginRateLimiter) -> None:
    locked, other = unique_email(), unique_email()
    await start_of_a_fresh_window()
    for _ in range(PER_MINUTE):
        await limiter.check(locked)
    with pytest.raises(RateLimitedError):
        await limiter.check(locked)

    for _ in range(PER_MINUTE):
        await limiter.check(other)


async def test_case_and_surrounding_spaces_do_not_make_a_new_email(
    limiter: LoginRateLimiter,
) -> None:
    email = unique_email()
    spellings = [email, email.upper(), f"  {email} ", email.title(), f"\t{email}\n"]
    await start_of_a_fresh_window()

    for spelling in spellings[:PER_MINUTE]:
        await limiter.check(spelling)
    with pytest.raises(RateLimitedError):
        await limiter.check(email.swapcase())


async def test_two_limiters_sharing_one_redis_share_the_count(
    redis_factory: Callable[[], Redis],
) -> None:
    # Two API processes, each with its own connection and limiter, behind one load balancer.
    first = LoginRateLimiter(
        RedisAttemptCounter(redis_factory()), per_minute=PER_MINUTE, per_address=PER_ADDRESS
    )
    second = LoginRateLimiter(
        RedisAttemptCounter(redis_factory()), per_minute=PER_MINUTE, per_address=PER_ADDRESS
    )
    email = unique_email()
    await start_of_a_fresh_window()

    for attempt in range(PER_MINUTE):
        await (first if attempt % 2 else second).check(email)

    for limiter in (first, second):
        with pytest.raises(RateLimitedError) as refused:
            await limiter.check(email)
        assert 0 < refused.value.retry_after <= 60


async def test_concurrent_attempts_through_redis_are_all_counted(
    redis_factory: Callable[[], Redis],
) -> None:
    limiters = [
        LoginRateLimiter(
            RedisAttemptCounter(redis_factory()), per_minute=PER_MINUTE, per_address=PER_ADDRESS
        )
        for _ in range(3)
    ]
    email = unique_email()
    await start_of_a_fresh_window()

    results = await asyncio.gather(
        *(limiters[i % 3].check(email) for i in range(PER_MINUTE * 3)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, RateLimitedError)]
    assert len(refused) == PER_MINUTE * 2
    assert all(r is None or isinstance(r, RateLimitedError) for r in results)


async def test_redis_counters_expire_so_redis_does_not_fill_up(
    redis_factory: Callable[[], Redis],
) -> None:
    redis = redis_factory()
    limiter = LoginRateLimiter(
        RedisAttemptCounter(redis), per_minute=PER_MINUTE, per_address=PER_ADDRESS
    )
    email = unique_email()
    await start_of_a_fresh_window()

    await limiter.check(email)

    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    keys = [key async for key in redis.scan_iter(match=f"*{digest}*")]
    assert len(keys) == 1
    assert 0 < await redis.ttl(keys[0]) <= 60
    await redis.delete(*keys)


async def test_local_counters_are_per_process() -> None:
    # Why several processes need Redis: each in-process counter only sees its own attempts.
    first = LoginRateLimiter(LocalAttemptCounter(), per_minute=PER_MINUTE, per_address=PER_ADDRESS)
    second = LoginRateLimiter(LocalAttemptCounter(), per_minute=PER_MINUTE, per_address=PER_ADDRESS)
    email = unique_email()
    await start_of_a_fresh_window()

    for _ in range(PER_MINUTE):
        await first.check(email)
    with pytest.raises(RateLimitedError):
        await first.check(email)

    await second.check(email)
