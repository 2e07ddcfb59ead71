"""A worker SIGTERMed while an approved action is at the shop: an action whose answer comes within
the shutdown grace is finished by that worker; one whose answer doesn't is handed back, not
counted as an attempt, and the next worker finds the shop's product instead of making another.
No action is executed twice; each worker exits cleanly."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from opshub.actions.kinds import ActionKind
from opshub.db.engine import create_pool
from tests.conftest import TenantHandle
from tests.fakes.saleor import FakeSaleorServer
from tests.faults.conftest import STARTUP, Cluster, until
from tests.integration.actions.test_service import (
    SALEOR_TOKEN,
    audit_events,
    make_task,
    product_payload,
    propose,
    store_saleor_key,
    wait_for_action,
)


@pytest.fixture
def shop() -> Iterator[FakeSaleorServer]:
    with FakeSaleorServer(tokens=[SALEOR_TOKEN]) as fake:
        yield fake


async def approve(client: httpx.AsyncClient, tenant: TenantHandle, action_id: uuid.UUID) -> None:
    response = await client.post(f"/v1/actions/{action_id}/approve", headers=tenant.headers)
    assert response.status_code == 200, response.text


def products(shop: FakeSaleorServer, action_id: uuid.UUID) -> list[str]:
    made = [p for p in shop.store.products if p.get("external_reference") == str(action_id)]
    return [variant["sku"] for product in made for variant in product["variants"]]


async def test_sigterm_mid_action_finishes_it_or_hands_it_back_and_none_runs_twice(
    cluster: Cluster, shop: FakeSaleorServer
) -> None:
    api = cluster.spawn("api", http=True)
    await cluster.serving(api)
    tenant = await cluster.tenant("Acme Outdoor")
    app_pool: asyncpg.Pool = await create_pool(cluster.postgres.urls.app, size=2)
    try:
        task_id = await make_task(cluster.owner, tenant.id)
        slow, quick = [
            await propose(
                app_pool, tenant.id, task_id, ActionKind.product_create, product_payload(sku)
            )
            for sku in ("TERM-SLOW", "TERM-QUICK")
        ]
    finally:
        await app_pool.close()
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
        await store_saleor_key(client, tenant, shop)

        # The shop makes the product, then holds its answer past the worker's grace.
        shop.delay_operation("productCreate", 30.0)
        await approve(client, tenant, slow.id)
        first = cluster.spawn("worker", "--concurrency", "2")

        async def at_the_shop(calls: int) -> bool:
            return shop.calls("productCreate") == calls

        await until(lambda: at_the_shop(1), STARTUP, "the first worker's productCreate")
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=30) == 0, first.output()
        row = await cluster.owner.fetchrow(
            "SELECT status, attempts, lease_owner FROM actions WHERE id = $1", slow.id
        )
        assert (row["status"], row["attempts"], row["lease_owner"]) == ("approved", 0, None)

        second = cluster.spawn("worker", "--concurrency", "2")
        row = await wait_for_action(cluster.owner, slow.id, {"executed", "failed"}, STARTUP)
        assert (row["status"], row["attempts"]) == ("executed", 1), row["error"]
        assert shop.calls("productCreate") == 1  # it looked, and found the product made
        assert products(shop, slow.id) == ["TERM-SLOW"]

        # Now the answer comes within the grace: the stopping worker finishes the action.
        shop.delay_operation("productCreate", 1.0)
        await approve(client, tenant, quick.id)
        await until(lambda: at_the_shop(2), 30, "the second worker's productCreate")
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=30) == 0, second.output()
        row = await cluster.owner.fetchrow(
            "SELECT status, attempts FROM actions WHERE id = $1", quick.id
        )
        assert (row["status"], row["attempts"]) == ("executed", 1)
        assert products(shop, quick.id) == ["TERM-QUICK"]

    assert shop.calls("productCreate") == 2
    for action in (slow, quick):
        assert (
            await cluster.count(
                "SELECT count(*) FROM outbox WHERE event_type = 'action.executed'"
                " AND data->>'action_id' = $1",
                str(action.id),
            )
            == 1
        )
    assert await audit_events(cluster.owner, quick.id) == [
        "proposed", "approved", "execution_started", "executed",
    ]  # fmt: skip
