"""A Saleor shop URL is held to the send-time SSRF rule, as webhook and model URLs are: the name
is resolved when the shop is called, every address is checked, and the call goes to the checked
address; a private network the operator allowed is reached, no other.

The shop's name is stubbed (``tests/fakes/dns.py``), never resolved; the shop is a fake on
loopback, which the stub points the name at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from ipaddress import ip_network

import pytest
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls
from tests.conftest import TenantHandle
from tests.fakes.dns import stub_dns
from tests.fakes.llm import FakeLLMServer
from tests.fakes.saleor_check import FakeSaleor

TOKEN = "saleor-app-token-for-the-guard-test"


@pytest.fixture(scope="module")
def shop() -> Iterator[FakeSaleor]:
    with FakeSaleor(app_tokens=[TOKEN]) as server:
        yield server


@pytest.fixture
def shop_url(shop: FakeSaleor, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shop under a public-looking name that resolves to loopback, as a rebinding attacker's
    name would resolve to an internal address."""
    shop.reset()
    stub_dns(monkeypatch)["shop.customer.example"] = ["127.0.0.1"]
    return f"http://shop.customer.example:{shop.port}/graphql/"


@asynccontextmanager
async def hub(
    settings: Settings, urls: DatabaseUrls, **update: object
) -> AsyncIterator[AsyncClient]:
    # The shared settings let tenants name loopback (the fakes live there); a deployment's don't.
    deployed = settings.model_copy(update={"allow_internal_urls": False, **update})
    app = create_app(deployed, urls)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as client,
    ):
        yield client


async def test_a_shop_name_resolving_to_an_internal_address_is_never_called(
    settings: Settings, urls: DatabaseUrls, tenant_a: TenantHandle, shop: FakeSaleor, shop_url: str
) -> None:
    async with hub(settings, urls) as client:
        response = await client.put(
            "/v1/credentials/saleor",
            json={"secret": {"url": shop_url, "token": TOKEN}},
            headers=tenant_a.headers,
        )

    assert response.status_code == 200, response.text  # the name passes the check at save time
    assert response.json()["status"] == "unreachable"
    assert shop.requests == []


async def test_a_shop_in_an_allowed_private_network_is_called_there(
    settings: Settings, urls: DatabaseUrls, tenant_a: TenantHandle, shop: FakeSaleor, shop_url: str
) -> None:
    lan = [ip_network("127.0.0.1/32")]
    async with hub(settings, urls, allowed_private_networks=lan) as client:
        response = await client.put(
            "/v1/credentials/saleor",
            json={"secret": {"url": shop_url, "token": TOKEN}},
            headers=tenant_a.headers,
        )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "healthy"
    assert len(shop.requests) == 1


async def test_the_operators_own_model_service_is_called_on_loopback_but_a_tenants_is_not(
    settings: Settings, urls: DatabaseUrls, tenant_a: TenantHandle
) -> None:
    with FakeLLMServer() as model_server:  # on loopback, as an operator's proxy in its network
        own = {"openai_base_url": f"{model_server.base_url}/v1"}
        async with hub(settings, urls, **own) as client:
            operators = await client.put(
                "/v1/credentials/openai",
                json={"secret": {"api_key": "sk-a-key-the-fake-accepts"}},
                headers=tenant_a.headers,
            )
            tenants = await client.put(
                "/v1/credentials/openai_compatible",
                json={"secret": {"base_url": f"{model_server.base_url}/v1", "model": "m"}},
                headers=tenant_a.headers,
            )

    assert operators.status_code == 200, operators.text
    assert operators.json()["status"] == "healthy"
    assert tenants.status_code == 422, tenants.text
    assert tenants.json()["error"]["details"]["fields"][0]["loc"] == "body.secret.base_url"
