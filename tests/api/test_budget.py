"""The monthly platform budget through the API: who may set it, and what it shows."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
from httpx import AsyncClient

from opshub.credentials.models import Source
from opshub.db.engine import tenant_transaction
from opshub.llm import usage as usage_ledger
from opshub.llm.usage import TokenUsage
from tests.conftest import TenantHandle


async def _viewer_headers(client: AsyncClient, tenant: TenantHandle, role: str) -> dict[str, str]:
    made = await client.post("/v1/keys", json={"name": role, "role": role}, headers=tenant.headers)
    return {"Authorization": f"Bearer {made.json()['key']}"}


async def test_an_admin_sets_the_budget_and_everyone_sees_it_with_the_spend(
    client: AsyncClient, app_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        await usage_ledger.record(
            conn,
            tenant_id=tenant_a.id,
            task_id=uuid.uuid4(),
            provider="openai",
            model="gpt-4o-mini",
            usage=TokenUsage(1_000_000, 0),
            billed_to=Source.platform,
            overrides={},
        )
    put = await client.put(
        "/v1/budget", json={"monthly_platform_usd": "25.00"}, headers=tenant_a.headers
    )
    viewer = await _viewer_headers(client, tenant_a, "viewer")
    seen = await client.get("/v1/budget", headers=viewer)

    assert put.status_code == 200
    assert Decimal(seen.json()["monthly_platform_usd"]) == Decimal("25.00")
    assert Decimal(seen.json()["platform_spend_this_month_usd"]) == Decimal("0.15")


async def test_null_removes_the_budget(client: AsyncClient, tenant_a: TenantHandle) -> None:
    await client.put("/v1/budget", json={"monthly_platform_usd": "10"}, headers=tenant_a.headers)
    cleared = await client.put(
        "/v1/budget", json={"monthly_platform_usd": None}, headers=tenant_a.headers
    )
    assert cleared.json()["monthly_platform_usd"] is None


async def test_a_member_cannot_change_the_budget(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    member = await _viewer_headers(client, tenant_a, "member")
    response = await client.put("/v1/budget", json={"monthly_platform_usd": "1"}, headers=member)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_a_negative_budget_is_refused(client: AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.put(
        "/v1/budget", json={"monthly_platform_usd": "-5"}, headers=tenant_a.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["loc"] == "body.monthly_platform_usd"


async def test_one_tenants_budget_is_not_anothers(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await client.put("/v1/budget", json={"monthly_platform_usd": "99"}, headers=tenant_a.headers)
    other = await client.get("/v1/budget", headers=tenant_b.headers)
    assert other.json() == {"monthly_platform_usd": None, "platform_spend_this_month_usd": "0"}
