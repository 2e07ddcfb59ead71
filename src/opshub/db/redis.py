"""The one way opshub opens Redis: with connect and read timeouts, so a Redis that accepts
connections and never answers (a black hole, a half-dead host) costs a request seconds, not
forever; the callers then fall back as they do when Redis is down."""

from __future__ import annotations

from redis.asyncio import Redis


def open_redis(url: str, *, timeout_seconds: float) -> Redis:
    # Pub/sub listeners read with their own waits (redis-py blocks them without a timeout);
    # the health check finds a subscriber connection that went silent.
    return Redis.from_url(
        url,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        health_check_interval=30,
    )
