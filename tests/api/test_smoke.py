from __future__ import annotations

from httpx import AsyncClient

from tests.conftest import TenantHandle


async def test_a_tenant_creates_and_reads_a_lead(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    created = await client.post(
        "/v1/data/leads",
        json={"name": "Jane Doe", "email": "jane@example.com"},
        headers=tenant_a.headers,
    )
    assert created.status_code == 201, created.text
    listed = await client.get("/v1/data/leads", headers=tenant_a.headers)
    assert [item["name"] for item in listed.json()["items"]] == ["Jane Doe"]
