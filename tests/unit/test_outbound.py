"""Calls to tenant-chosen URLs resolve the host, check every address and connect to the checked one.

Outside names are stubbed (``getaddrinfo``), never resolved; the only server is a fake on loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from opshub.outbound import InternalAddressError, PublicOnlyTransport, is_internal_name, pinned
from tests.fakes.dns import stub_dns
from tests.fakes.server import BackgroundServer


class Receiver(BackgroundServer):
    """A webhook receiver on loopback that counts what reaches it."""

    def __init__(self) -> None:
        self.received = 0
        super().__init__(Starlette(routes=[Route("/hook", self._hook, methods=["POST"])]))

    async def _hook(self, _request: Request) -> PlainTextResponse:
        self.received += 1
        return PlainTextResponse("ok")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    return stub_dns(monkeypatch)


async def test_a_public_name_resolving_to_loopback_is_refused_and_never_reached(
    receiver: Receiver, dns: dict[str, list[str]]
) -> None:
    dns["hooks.customer.example"] = ["127.0.0.1"]
    url = f"http://hooks.customer.example:{receiver.port}/hook"

    async with httpx.AsyncClient(transport=PublicOnlyTransport()) as client:
        with pytest.raises(InternalAddressError):
            await client.post(url, content=b"{}")
    assert receiver.received == 0
    async with httpx.AsyncClient() as client:  # the stub is what an unguarded client follows
        assert (await client.post(url, content=b"{}")).status_code == 200
    assert receiver.received == 1


async def test_a_name_with_any_private_address_among_its_answers_is_refused(
    dns: dict[str, list[str]],
) -> None:
    dns["mixed.customer.example"] = ["8.8.8.8", "10.1.2.3"]

    async with httpx.AsyncClient(transport=PublicOnlyTransport()) as client:
        with pytest.raises(InternalAddressError):
            await client.get("https://mixed.customer.example/v1/models")


async def test_a_model_box_in_an_allowed_private_network_is_reached_and_no_other(
    receiver: Receiver, dns: dict[str, list[str]]
) -> None:
    """OPSHUB_ALLOWED_PRIVATE_NETWORKS holds at send time too: a name resolving into a named
    network passes, one resolving anywhere else private still does not."""
    dns["gpu-box.lan.example"] = ["127.0.0.1"]
    dns["other.lan.example"] = ["127.0.0.2"]
    allowed = [ipaddress.ip_network("127.0.0.1/32")]

    async with httpx.AsyncClient(transport=PublicOnlyTransport(allowed=allowed)) as client:
        reached = await client.post(f"http://gpu-box.lan.example:{receiver.port}/hook")
        assert reached.status_code == 200
        with pytest.raises(InternalAddressError):
            await client.post(f"http://other.lan.example:{receiver.port}/hook")
    assert receiver.received == 1


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost.", "LOCALHOST.", "db.internal.", "127.0.0.1", "[::1]", "10.0.0.8"],
)
def test_internal_names_and_literal_addresses_are_internal(host: str) -> None:
    assert is_internal_name(host)


def test_public_names_and_addresses_are_not_internal_by_name() -> None:
    assert not is_internal_name("api.openai.com")
    assert not is_internal_name("8.8.8.8")


def test_the_request_goes_to_the_checked_address_under_its_own_name() -> None:
    request = httpx.Request("POST", "https://hooks.customer.example:8443/hook", content=b"{}")

    sent = pinned(request, "93.184.215.14")

    assert sent.url.host == "93.184.215.14" and sent.url.port == 8443
    assert sent.headers["Host"] == "hooks.customer.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.customer.example"
