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
from collections.abc import Collection, Sequence

import httpx

from opshub.config import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
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


def in_allowed_networks(host: str, networks: Sequence[Network]) -> bool:
    """An address the operator named as a private network tenants may use (a GPU box, Ollama
    on the LAN). Only addresses are matched: a name means nothing until it is resolved."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


def checked_address(host: str, addresses: list[str], allowed: Sequence[Network] = ()) -> str:
    """The address to connect to, once every one ``host`` resolved to is public (or in one of
    the ``allowed`` private networks)."""
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global and not any(ip in network for network in allowed):
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


def _host_and_port(request: httpx.Request, allowed: Sequence[Network]) -> tuple[str, int]:
    host = request.url.host
    if is_internal_name(host) and not in_allowed_networks(host, allowed):
        raise InternalAddressError(f"{host} is an internal address, which this hub does not call")
    return host, request.url.port or (443 if request.url.scheme == "https" else 80)


def pin_sync(request: httpx.Request, allowed: Sequence[Network] = ()) -> httpx.Request:
    host, port = _host_and_port(request, allowed)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"{host} does not resolve") from exc
    return pinned(request, checked_address(host, _addresses(list(infos)), allowed))


async def pin(request: httpx.Request, allowed: Sequence[Network] = ()) -> httpx.Request:
    host, port = _host_and_port(request, allowed)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"{host} does not resolve") from exc
    return pinned(request, checked_address(host, _addresses(list(infos)), allowed))


_DEFAULT_PORTS = {"http": 80, "https": 443}


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """An httpx transport that only connects to public addresses (or ``allowed`` private
    networks), checked as it connects."""

    def __init__(
        self,
        *,
        allowed: Sequence[Network] = (),
        trusted_origins: Collection[str] = (),
        limits: httpx.Limits = httpx.Limits(),
    ) -> None:
        super().__init__(limits=limits)
        self._allowed = allowed
        self._trusted_origins = trusted_origins

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if f"{url.scheme}://{url.host}:{url.port or _DEFAULT_PORTS[url.scheme]}" in (
            self._trusted_origins
        ):
            return await super().handle_async_request(request)
        return await super().handle_async_request(await pin(request, self._allowed))


class PublicOnlySyncTransport(httpx.HTTPTransport):
    def __init__(self, *, allowed: Sequence[Network] = ()) -> None:
        super().__init__()
        self._allowed = allowed

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return super().handle_request(pin_sync(request, self._allowed))


def guarded_client(
    settings: Settings,
    *,
    limits: httpx.Limits = httpx.Limits(),
    timeout: httpx.Timeout | float = 5.0,
) -> httpx.AsyncClient:
    """The client for every call to a service a tenant's credentials point at (Saleor shops,
    model servers, ad platforms, Amazon): guarded at send time unless the operator lets tenants
    name internal addresses (``OPSHUB_ALLOW_INTERNAL_URLS``); the services the operator
    configured itself (``Settings.service_origins``) are reached wherever they are."""
    transport = (
        None
        if settings.allow_internal_urls
        else PublicOnlyTransport(
            allowed=settings.allowed_private_networks,
            trusted_origins=settings.service_origins,
            limits=limits,
        )
    )
    return httpx.AsyncClient(
        transport=transport, limits=limits, timeout=timeout, follow_redirects=False
    )
