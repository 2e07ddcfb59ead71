"""Gauges read from the database: queue depth and age per priority, credential health per
provider; and the connections of the process's pools, read at each scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import asyncpg
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from opshub.db.sql import load_queries
from opshub.loops import stop_requested
from opshub.observability.metrics import CREDENTIAL_HEALTH, QUEUE_DEPTH, QUEUE_OLDEST_AGE

log = structlog.get_logger(__name__)
QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
PRIORITIES = range(10)  # the tasks table's CHECK: 0..9


async def sample_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        queue = {row["priority"]: row for row in await QUERIES["queue_by_priority"].fetch(conn)}
        credentials = await QUERIES["credentials_by_health"].fetch(conn)
    # Every priority is exported, 0 when empty: an alert on age must see the queue drain.
    for priority in PRIORITIES:
        row = queue.get(priority)
        QUEUE_DEPTH.labels(str(priority)).set(row["depth"] if row else 0)
        QUEUE_OLDEST_AGE.labels(str(priority)).set(float(row["oldest_age"]) if row else 0.0)
    CREDENTIAL_HEALTH.clear()
    for row in credentials:
        CREDENTIAL_HEALTH.labels(row["provider"], row["status"]).set(row["credentials"])


async def sample_forever(pool: asyncpg.Pool, *, every_seconds: float = 15.0) -> None:
    """The scheduler's loop (one sample per process and interval; Prometheus takes the max)."""
    while not stop_requested():
        try:
            await sample_once(pool)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("metrics sample failed", error=type(exc).__name__)
        await asyncio.sleep(every_seconds)


class PoolCollector(Collector):
    """Used, idle and maximum connections of each named pool, as they are when scraped."""

    def __init__(self) -> None:
        self._pools: dict[str, asyncpg.Pool] = {}

    def watch(self, name: str, pool: asyncpg.Pool) -> None:
        self._pools[name] = pool

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "opshub_db_pool_connections",
            "Connections of a database pool, by state (used, idle, max)",
            labels=["pool", "state"],
        )
        for name, pool in list(self._pools.items()):
            idle = pool.get_idle_size()
            family.add_metric([name, "used"], pool.get_size() - idle)
            family.add_metric([name, "idle"], idle)
            family.add_metric([name, "max"], pool.get_max_size())
        yield family


POOLS = PoolCollector()
REGISTRY.register(POOLS)
