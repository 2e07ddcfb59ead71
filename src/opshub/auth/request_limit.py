"""Requests per tenant: a token bucket (``rate`` per second, up to ``burst`` at once) in Redis,
shared by every API process; in-process when embedded, and while Redis is away."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from opshub.config import RequestRate
from opshub.errors import RateLimitedError

REDIS_RETRY_SECONDS = 5.0
# A plan changes rarely; a tenant moved to another one gets its rate within this.
PLAN_CACHE_SECONDS = 60.0
log = structlog.get_logger(__name__)

# Refill by the time passed since the last request (the server's clock), then take one token.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class _LocalBuckets:
    def __init__(self) -> None:
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}

    def take(self, tenant_id: uuid.UUID, rate: RequestRate) -> float:
        """Seconds to wait; 0 when a token was taken."""
        now = time.monotonic()
        tokens, at = self._buckets.get(tenant_id, (float(rate.burst), now))
        tokens = min(rate.burst, tokens + (now - at) * rate.per_second)
        if tokens >= 1:
            self._buckets[tenant_id] = (tokens - 1, now)
            return 0.0
        self._buckets[tenant_id] = (tokens, now)
        return (1 - tokens) / rate.per_second


class TenantRequestLimiter:
    """``default`` for every tenant unless its plan is one of ``by_plan``."""

    def __init__(
        self, redis: Redis | None, *, default: RequestRate, by_plan: Mapping[str, RequestRate]
    ) -> None:
        self._redis = redis
        self._take = redis.register_script(_TAKE) if redis is not None else None
        self._default, self._by_plan = default, dict(by_plan)
        self._plans: dict[uuid.UUID, tuple[str, float]] = {}
        self._local = _LocalBuckets()
        self._redis_retry_at = 0.0

    async def rate_for(
        self, tenant_id: uuid.UUID, *, plan_of: Callable[[], Awaitable[str]]
    ) -> RequestRate:
        """The tenant's rate; ``plan_of`` reads its plan, at most once a minute per tenant, and
        not at all when no plan has a rate of its own."""
        if not self._by_plan:
            return self._default
        plan, expires = self._plans.get(tenant_id, ("", 0.0))
        if time.monotonic() >= expires:
            plan = await plan_of()
            self._plans[tenant_id] = (plan, time.monotonic() + PLAN_CACHE_SECONDS)
        return self._by_plan.get(plan, self._default)

    async def check(self, tenant_id: uuid.UUID, rate: RequestRate) -> None:
        wait = await self._wait(tenant_id, rate)
        if wait > 0:
            raise RateLimitedError(
                f"this tenant is over {rate.per_second:g} requests a second; try again shortly",
                retry_after=max(1, math.ceil(wait)),
            )

    async def _wait(self, tenant_id: uuid.UUID, rate: RequestRate) -> float:
        if self._take is not None and time.monotonic() >= self._redis_retry_at:
            try:
                answer = await self._take(
                    keys=[f"opshub:requests:{tenant_id}"], args=[rate.per_second, rate.burst]
                )
                return float(answer)
            except (RedisError, OSError) as exc:
                log.warning(
                    "request limits in-process while Redis is away", error=type(exc).__name__
                )
                self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        return self._local.take(tenant_id, rate)
