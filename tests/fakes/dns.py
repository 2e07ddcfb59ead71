"""Names a test makes up and what they resolve to: outside names are stubbed, never resolved."""

from __future__ import annotations

import socket
from typing import Any

import pytest

_real_getaddrinfo = socket.getaddrinfo


def stub_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Patch ``getaddrinfo``; fill the returned mapping (name → IPv4 addresses). Other names,
    loopback included, resolve as usual."""
    names: dict[str, list[str]] = {}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host  # anyio passes IDNA bytes
        if name in names:
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in names[name]
            ]
        return _real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names
