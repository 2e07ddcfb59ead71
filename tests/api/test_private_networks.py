"""A deployment with OPSHUB_ALLOWED_PRIVATE_NETWORKS: a tenant stores its model server on that
network (a GPU box on the LAN) and it is checked there; another private address is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_network

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer


@pytest.fixture(scope="module")
def gpu_box() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as box:  # on loopback: the "private network" of this test
        yield box


@pytest.fixture(scope="module")
async def lan_app(settings: Settings, urls: DatabaseUrls) -> AsyncIterator[FastAPI]:
    deployed = settings.model_copy(
        update={
            "allow_internal_urls": False,
            "allowed_private_networks": [ip_network("127.0.0.0/8")],
        }
    )
    application = create_app(deployed, urls)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def lan_client(lan_app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=lan_app), base_url="http://opshub") as c:
        yield c


async def test_a_model_server_on_an_allowed_private_network_is_stored_and_checked(
    lan_client: AsyncClient, tenant_a: TenantHandle, gpu_box: FakeLLMServer
) -> None:
    secret = {"base_url": f"{gpu_box.base_url}/v1", "api_key": "sk-lan-box-0001", "model": "m"}
    response = await lan_client.put(
        "/v1/credentials/openai_compatible", json={"secret": secret}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "healthy"  # checked on the box itself


async def test_a_private_address_outside_the_allowed_networks_is_refused(
    lan_client: AsyncClient, tenant_a: TenantHandle
) -> None:
    secret = {"base_url": "http://192.168.1.20:11434/v1", "model": "llama3.1:8b"}
    response = await lan_client.put(
        "/v1/credentials/openai_compatible", json={"secret": secret}, headers=tenant_a.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["fields"][0]["loc"] == "body.secret.base_url"
