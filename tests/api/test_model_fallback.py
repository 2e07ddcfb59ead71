"""The tenant's fallback model through the API."""

from __future__ import annotations

from httpx import AsyncClient

from tests.conftest import TenantHandle

CLAUDE = {"provider": "anthropic", "model": "claude-haiku-4-5"}


async def test_an_admin_sets_and_clears_the_fallback(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    put = await client.put(
        "/v1/models/fallback", json={"fallback": CLAUDE}, headers=tenant_a.headers
    )
    seen = await client.get("/v1/models/fallback", headers=tenant_a.headers)
    cleared = await client.put(
        "/v1/models/fallback", json={"fallback": None}, headers=tenant_a.headers
    )

    assert put.status_code == 200 and seen.json() == {"fallback": CLAUDE}
    assert cleared.json() == {"fallback": None}
    assert (await client.get("/v1/models/fallback", headers=tenant_a.headers)).json() == {
        "fallback": None
    }


async def test_a_connector_is_not_a_fallback_model(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.put(
        "/v1/models/fallback",
        json={"fallback": {"provider": "saleor", "model": "x"}},
        headers=tenant_a.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["loc"] == "body.fallback.provider"


async def test_a_member_cannot_change_the_fallback(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    made = await client.post(
        "/v1/keys", json={"name": "m", "role": "member"}, headers=tenant_a.headers
    )
    member = {"Authorization": f"Bearer {made.json()['key']}"}
    response = await client.put("/v1/models/fallback", json={"fallback": CLAUDE}, headers=member)
    assert response.status_code == 403


async def test_one_tenants_fallback_is_not_anothers(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await client.put("/v1/models/fallback", json={"fallback": CLAUDE}, headers=tenant_a.headers)
    other = await client.get("/v1/models/fallback", headers=tenant_b.headers)
    assert other.json() == {"fallback": None}
