"""GET /v1/audit (API.md v1.1): the append-only action audit, newest first, admin+ only."""

from __future__ import annotations

import asyncpg
from httpx import AsyncClient

from opshub.auth.models import Role
from tests.api.test_actions_api import headers_for, proposed
from tests.conftest import TenantHandle


async def test_the_audit_lists_proposals_and_decisions_newest_first_in_pages(
    client: AsyncClient, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    _, (first, second) = await proposed(app_pool, owner_pool, tenant_a, count=2)
    rejected = await client.post(
        f"/v1/actions/{first}/reject", json={"reason": "Not now."}, headers=tenant_a.headers
    )
    assert rejected.status_code == 200, rejected.text

    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/audit", params=params, headers=tenant_a.headers)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(e["action_id"], e["event"]) for e in seen] == [
        (first, "rejected"),
        (second, "proposed"),
        (first, "proposed"),
    ]
    assert seen[0]["detail"] == {"reason": "Not now."}
    assert seen[0]["actor"].startswith("api_key:")
    assert seen[0]["kind"] == "saleor.product_create"


async def test_the_audit_is_for_admins_and_shows_only_the_callers_tenant(
    client: AsyncClient,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    await proposed(app_pool, owner_pool, tenant_b)
    mine = (await client.get("/v1/audit", headers=tenant_a.headers)).json()
    assert mine["items"] == []
    member = await headers_for(owner_pool, tenant_a, Role.member)
    refused = await client.get("/v1/audit", headers=member)
    assert refused.status_code == 403
    garbled = await client.get("/v1/audit?cursor=abc", headers=tenant_a.headers)
    assert garbled.status_code == 422
