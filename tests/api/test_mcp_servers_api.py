"""/v1/mcp-servers (API.md v1.1): a tenant registers several MCP servers for its crews.

The secret is sealed by the credential store under the server's name and never returned; a URL
aimed at the platform's own network is refused; names, crews and tool lists are checked; roles
as for credentials (admins write, viewers read); another tenant's server is 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.auth.models import Role
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, tenant_transaction
from opshub.mcp_servers import service as mcp_servers_service
from tests.api.test_actions_api import headers_for
from tests.conftest import TenantHandle

SHOP = {
    "url": "https://mcp.acme.example/mcp",
    "secret": "mcp-token-abcdef123456",
    "tools": ["lookup_order", "refund_order"],
    "crews": ["ecommerce"],
    "side_effecting_tools": ["refund_order"],
}


@pytest.fixture
async def strict_client(settings: Settings, urls: DatabaseUrls) -> AsyncIterator[AsyncClient]:
    """The API as deployed by default: no URLs aimed at internal addresses."""
    application: FastAPI = create_app(
        settings.model_copy(update={"allow_internal_urls": False}), urls
    )
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://opshub") as c,
    ):
        yield c


async def put(client: AsyncClient, tenant: TenantHandle, name: str, body: dict[str, Any]) -> Any:
    return await client.put(f"/v1/mcp-servers/{name}", json=body, headers=tenant.headers)


async def test_a_registered_server_reads_back_without_its_secret(
    client: AsyncClient, tenant_a: TenantHandle, app: FastAPI, app_pool: asyncpg.Pool
) -> None:
    created = await put(client, tenant_a, "shop", SHOP)
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["has_secret"] is True
    assert SHOP["secret"] not in created.text and "secret" not in server
    assert server["tools"] == SHOP["tools"] and server["crews"] == ["ecommerce"]
    assert server["side_effecting_tools"] == ["refund_order"]

    second = await put(
        client, tenant_a, "crm", {"url": "https://crm.example/mcp", "crews": ["marketing"]}
    )
    assert second.status_code == 201 and second.json()["tools"] is None
    listed = await client.get("/v1/mcp-servers", headers=tenant_a.headers)
    assert [s["name"] for s in listed.json()] == ["crm", "shop"]
    assert SHOP["secret"] not in listed.text

    # The store opens what it sealed under the server's name.
    state = app.state.opshub
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        row = await conn.fetchrow(
            "SELECT * FROM mcp_servers WHERE tenant_id = $1 AND name = 'shop'", tenant_a.id
        )
        assert (
            row["secret_ciphertext"] is None
            or SHOP["secret"].encode() not in row["secret_ciphertext"]
        )
        secret = await mcp_servers_service.open_secret(
            conn, tenant_id=tenant_a.id, row=row, store=state.credential_store
        )
    assert secret == SHOP["secret"]


async def test_replacing_keeps_the_secret_unless_told_and_delete_removes_it(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    assert (await put(client, tenant_a, "shop", SHOP)).status_code == 201
    without = {key: value for key, value in SHOP.items() if key != "secret"}
    replaced = await put(
        client, tenant_a, "shop", {**without, "crews": ["ecommerce", "operations"]}
    )
    assert replaced.status_code == 200
    assert replaced.json()["has_secret"] is True
    assert replaced.json()["crews"] == ["ecommerce", "operations"]
    cleared = await put(client, tenant_a, "shop", {**without, "secret": None})
    assert cleared.json()["has_secret"] is False

    deleted = await client.delete("/v1/mcp-servers/shop", headers=tenant_a.headers)
    assert deleted.status_code == 204
    gone = await client.get("/v1/mcp-servers/shop", headers=tenant_a.headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/mcp", "http://localhost/mcp", "http://10.0.0.5/mcp",
            "http://169.254.169.254/latest", "http://[::1]/mcp"],
)  # fmt: skip
async def test_a_url_aimed_at_internal_addresses_is_refused(
    strict_client: AsyncClient, tenant_a: TenantHandle, url: str
) -> None:
    refused = await put(strict_client, tenant_a, "shop", {**SHOP, "url": url})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["fields"][0]["loc"] == "body.url"
    missing = await strict_client.get("/v1/mcp-servers/shop", headers=tenant_a.headers)
    assert missing.status_code == 404, "nothing half-written"


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("Shop!", SHOP),
        ("shop", {**SHOP, "crews": ["nonexistent"]}),
        ("shop", {**SHOP, "crews": []}),
        ("shop", {**SHOP, "side_effecting_tools": ["not_exposed"]}),
        ("shop", {**SHOP, "url": "ftp://mcp.example/x"}),
        ("shop", {**SHOP, "extra": 1}),
    ],
)
async def test_bad_input_is_a_422_and_stores_nothing(
    client: AsyncClient, tenant_a: TenantHandle, name: str, body: dict[str, Any]
) -> None:
    refused = await put(client, tenant_a, name, body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid_request"
    assert SHOP["secret"] not in refused.text
    listed = await client.get("/v1/mcp-servers", headers=tenant_a.headers)
    assert listed.json() == []


async def test_roles_and_tenants_apply(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    assert (await put(client, tenant_a, "shop", SHOP)).status_code == 201
    member = await headers_for(owner_pool, tenant_a, Role.member)
    viewer = await headers_for(owner_pool, tenant_a, Role.viewer)
    refused = await client.put("/v1/mcp-servers/shop", json=SHOP, headers=member)
    assert refused.status_code == 403
    assert (await client.delete("/v1/mcp-servers/shop", headers=member)).status_code == 403
    assert (await client.get("/v1/mcp-servers/shop", headers=viewer)).status_code == 200

    other = await client.get("/v1/mcp-servers/shop", headers=tenant_b.headers)
    assert other.status_code == 404
    assert (await client.get("/v1/mcp-servers", headers=tenant_b.headers)).json() == []
    assert (
        await client.delete("/v1/mcp-servers/shop", headers=tenant_b.headers)
    ).status_code == 404
