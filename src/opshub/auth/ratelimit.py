"""Login attempts per e-mail per one-minute window: in Redis when configured, else in-process."""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from redis.asyncio import Redis

from opshub.auth.errors import RateLimitedError

WINDOW_SECONDS = 60


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
    """The embedded single-process mode's counter; several processes need Redis."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def hit(self, key: str) -> tuple[int, int]:
        now = int(time.time())
        window = now // WINDOW_SECONDS
        if window != self._window:
            self._window, self._counts = window, {}
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key], WINDOW_SECONDS - now % WINDOW_SECONDS


class LoginRateLimiter:
    def __init__(self, counter: AttemptCounter, *, per_minute: int) -> None:
        self._counter = counter
        self._per_minute = per_minute

    async def check(self, email: str) -> None:
        key = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        attempts, retry_after = await self._counter.hit(key)
        if attempts > self._per_minute:
            raise RateLimitedError(
                "too many login attempts for this e-mail; try again later", retry_after=retry_after
            )
