"""Calls to addresses a tenant chose (webhooks, self-hosted models): never into our own network.

A URL is checked when it is saved, and again on every request: the host is resolved, every
address it resolves to must be public, and the connection goes to the address that was checked,
so a name can't pass the check and then resolve to a private address when the client connects
(DNS rebinding). The request keeps its ``Host`` header and TLS still verifies the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

_INTERNAL_NAMES = ("localhost",)
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


class InternalAddressError(httpx.ConnectError):
    """The URL's host is, or resolves to, a loopback, private, link-local or reserved address."""


def is_internal_name(host: str) -> bool:
    """Literal internal addresses and the names that only ever mean one (``localhost.`` too)."""
    host = host.strip("[]").lower().rstrip(".")
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def checked_address(host: str, addresses: list[str]) -> str:
    """The address to connect to, once every one ``host`` resolved to is public."""
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise InternalAddressError(
                f"{host} resolves to an internal address, which this hub does not call"
            )
    return addresses[0]


def _addresses(infos: list[tuple[object, ...]]) -> list[str]:
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # type: ignore[index]


def pinned(request: httpx.Request, address: str) -> httpx.Request:
    """``request`` sent to ``address``; TLS verifies (and SNI names) the original host."""
    host = request.url.host
    request.url = request.url.copy_with(host=address)
    request.extensions = {**request.extensions, "sni_hostname": host}
    return request


def _host_and_port(request: httpx.Request) -> tuple[str, int]:
    host = request.url.host
    if is_internal_name(host):
        raise InternalAddressError(f"{host} is an internal address, which this hub does not call")
    return host, request.url.port or (443 if request.url.scheme == "https" else 80)


def pin_sync(request: httpx.Request) -> httpx.Request:
    host, port = _host_and_port(request)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"{host} does not resolve") from exc
    return pinned(request, checked_address(host, _addresses(list(infos))))


async def pin(request: httpx.Request) -> httpx.Request:
    host, port = _host_and_port(request)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"{host} does not resolve") from exc
    return pinned(request, checked_address(host, _addresses(list(infos))))


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """An httpx transport that only connects to public addresses, checked as it connects."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await super().handle_async_request(await pin(request))


class PublicOnlySyncTransport(httpx.HTTPTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return super().handle_request(pin_sync(request))
