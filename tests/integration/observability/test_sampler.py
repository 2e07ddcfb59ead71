"""The queue gauges an operator alerts on, sampled from the tasks table."""

from __future__ import annotations

import asyncpg
from httpx import AsyncClient
from prometheus_client import REGISTRY

from opshub.observability.sampler import sample_once
from tests.conftest import TenantHandle


def _gauge(name: str, priority: int) -> float:
    value = REGISTRY.get_sample_value(name, {"priority": str(priority)})
    assert value is not None, name
    return value


async def test_a_queued_task_shows_in_depth_and_age_until_it_leaves_the_queue(
    client: AsyncClient, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    await sample_once(owner_pool)
    before = _gauge("opshub_queue_depth", 7)
    response = await client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "Summarise last week", "priority": 7},
        headers=tenant_a.headers,
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]

    await sample_once(owner_pool)
    assert _gauge("opshub_queue_depth", 7) == before + 1
    assert _gauge("opshub_queue_oldest_age_seconds", 7) >= 0
    assert _gauge("opshub_queue_depth", 8) >= 0  # every priority is exported, empty or not

    cancelled = await client.post(f"/v1/tasks/{task_id}/cancel", headers=tenant_a.headers)
    assert cancelled.json()["status"] == "cancelled", cancelled.text
    await sample_once(owner_pool)
    assert _gauge("opshub_queue_depth", 7) == before
