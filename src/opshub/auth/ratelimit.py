"""Login attempts per one-minute window, per e-mail and per source address: in Redis when
configured, else counted in each process and told to the others by NOTIFY; in-process too while
Redis is away, so sign-in outlives it."""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from opshub.db.bus import PgBus
from opshub.errors import RateLimitedError

WINDOW_SECONDS = 60
CHANNEL = "opshub_login_attempts"
REDIS_RETRY_SECONDS = 5.0
log = structlog.get_logger(__name__)


class AttemptCounter(Protocol):
    async def hit(self, key: str) -> tuple[int, int]:
        """Count one attempt; return (attempts in this window, seconds until it resets)."""
        ...


class RedisAttemptCounter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hit(self, key: str) -> tuple[int, int]:
        window = int(time.time()) // WINDOW_SECONDS
        redis_key = f"opshub:login:{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, WINDOW_SECONDS)
            count, _ = await pipe.execute()
        return int(count), WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS


class LocalAttemptCounter:
    """One process's counts; ``SharedAttemptCounter`` adds the other processes' attempts."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def hit(self, key: str) -> tuple[int, int]:
        now = int(time.time())
        return self.add(key, now // WINDOW_SECONDS), WINDOW_SECONDS - now % WINDOW_SECONDS

    def add(self, key: str, window: int) -> int:
        """Count an attempt of ``window``; one of a window already past counts for nothing."""
        if window > self._window:
            self._window, self._counts = window, {}
        elif window < self._window:
            return 0
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]


class SharedAttemptCounter:
    """Several processes without Redis: each counts every attempt, its own and the others'
    (NOTIFY). An attempt reaches the others a few milliseconds after it was counted here."""

    def __init__(self, bus: PgBus) -> None:
        self._bus = bus
        self._local = LocalAttemptCounter()
        bus.subscribe(CHANNEL, self._heard)

    async def hit(self, key: str) -> tuple[int, int]:
        now = int(time.time())
        window = now // WINDOW_SECONDS
        count = self._local.add(key, window)
        await self._bus.notify(CHANNEL, [f"{window}:{key}"])
        return count, WINDOW_SECONDS - now % WINDOW_SECONDS

    def _heard(self, body: str) -> None:
        window, _, key = body.partition(":")
        self._local.add(key, int(window))


class FallbackAttemptCounter:
    """Redis while it answers; an in-process count while it doesn't (tried again every few
    seconds). Each process then limits on its own: looser, but sign-in keeps working."""

    def __init__(self, redis: Redis) -> None:
        self._redis = RedisAttemptCounter(redis)
        self._local = LocalAttemptCounter()
        self._redis_retry_at = 0.0

    async def hit(self, key: str) -> tuple[int, int]:
        if time.monotonic() >= self._redis_retry_at:
            try:
                return await self._redis.hit(key)
            except (RedisError, OSError) as exc:
                log.warning("login limits in-process while Redis is away", error=type(exc).__name__)
                self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        return await self._local.hit(key)


def _key(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


class LoginRateLimiter:
    def __init__(self, counter: AttemptCounter, *, per_minute: int, per_address: int) -> None:
        self._counter = counter
        self._per_minute = per_minute
        self._per_address = per_address

    async def check(self, email: str, *, address: str | None = None) -> None:
        """``address``: the client's; many e-mails from one address are one flood."""
        if address is not None:
            attempts, retry_after = await self._counter.hit(_key("address", address))
            if attempts > self._per_address:
                raise RateLimitedError(
                    "too many login attempts from this address; try again later",
                    retry_after=retry_after,
                )
        attempts, retry_after = await self._counter.hit(_key("email", email.strip().lower()))
        if attempts > self._per_minute:
            raise RateLimitedError(
                "too many login attempts for this e-mail; try again later", retry_after=retry_after
            )
