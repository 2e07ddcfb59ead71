"""What the operations digest reads besides the shop: the health of the business's connections
(never a fingerprint or a secret) and its own failed runs, not another business's."""

from __future__ import annotations

import asyncpg

from opshub.credentials.models import Provider
from opshub.credentials.resolver import CredentialResolver
from opshub.tools.operations import ConnectionHealthTool, FailedRunsTool
from tests.conftest import TenantHandle
from tests.fakes.saleor import FakeSaleorServer
from tests.integration.tools.conftest import (
    SHOP_TOKEN,
    Connect,
    ContextFor,
    data,
    make_task,
    use,
)


async def fingerprints(owner_pool: asyncpg.Pool, tenant: TenantHandle) -> set[str]:
    async with owner_pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT fingerprint FROM credentials WHERE tenant_id = $1", tenant.id
        )
    return {row["fingerprint"] for row in rows}


async def test_connection_health_lists_each_connection_with_its_health_and_no_secret(
    tenant_a: TenantHandle,
    shop: FakeSaleorServer,
    connect: Connect,
    context_for: ContextFor,
    resolver: CredentialResolver,
    owner_pool: asyncpg.Pool,
) -> None:
    await connect.saleor(tenant_a, shop)
    _, meta_token = await connect.meta(tenant_a)
    await resolver.mark_invalid(
        tenant_id=tenant_a.id, provider=Provider.meta_ads, detail="Meta refused the token"
    )

    answer = await use(ConnectionHealthTool(context=context_for(tenant_a)))

    assert [{k: c[k] for k in ("provider", "source", "health")} for c in data(answer)] == [
        {"provider": "meta_ads", "source": "byok", "health": "invalid"},
        {"provider": "saleor", "source": "byok", "health": "unchecked"},
    ]
    assert all(set(c) == {"provider", "source", "health", "checked_at"} for c in data(answer))
    hidden = {SHOP_TOKEN, meta_token, shop.url, *await fingerprints(owner_pool, tenant_a)}
    assert len(hidden) == 5 and not [value for value in hidden if value in answer]


async def test_connection_health_of_a_business_with_no_connections_is_empty(
    tenant_a: TenantHandle, context_for: ContextFor
) -> None:
    answer = await use(ConnectionHealthTool(context=context_for(tenant_a)))

    assert data(answer) == []


async def test_failed_runs_are_the_businesss_own_newest_first(
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
) -> None:
    error = {"code": "model_error", "message": "the model refused the key"}
    older = await make_task(
        owner_pool, tenant_a, status="failed", input="Weekly digest", error=error
    )
    timeout = {"code": "timeout", "message": "the run took too long"}
    newer = await make_task(owner_pool, tenant_a, status="failed", input="x" * 300, error=timeout)
    await make_task(owner_pool, tenant_a, status="succeeded", input="Daily digest")
    await make_task(owner_pool, tenant_b, status="failed", input="Blue Bakery's run", error=error)
    tool = FailedRunsTool(context=context_for(tenant_a))

    answer = data(await use(tool))
    one = data(await use(tool, limit=1))

    assert [(run["id"], run["error"]["code"]) for run in answer] == [
        (str(newer), "timeout"),
        (str(older), "model_error"),
    ]
    assert answer[0]["input"] == "x" * 200  # the request, cut short
    assert answer[1] == {**answer[1], "crew": "marketing", "input": "Weekly digest", "error": error}
    assert [run["id"] for run in one] == [str(newer)]


async def test_a_business_without_failed_runs_is_told_so(
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    context_for: ContextFor,
    owner_pool: asyncpg.Pool,
) -> None:
    error = {"code": "model_error", "message": "the model refused the key"}
    await make_task(owner_pool, tenant_b, status="failed", error=error)

    answer = await use(FailedRunsTool(context=context_for(tenant_a)))

    assert answer == "No failed runs."
