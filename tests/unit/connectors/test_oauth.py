"""The access token cache: one fetch for concurrent callers, renewed a minute before expiry and
on demand."""

from __future__ import annotations

import asyncio

import pytest

from opshub.connectors import oauth
from opshub.connectors.oauth import AccessToken, TokenCache


class TokenEndpoint:
    def __init__(self, *, expires_in: float = 3600) -> None:
        self.issued = 0
        self.expires_in = expires_in

    async def fetch(self) -> AccessToken:
        await asyncio.sleep(0)  # let concurrent callers pile up behind the first fetch
        self.issued += 1
        return AccessToken(f"token-{self.issued}", self.expires_in)


async def test_concurrent_callers_share_one_fetch() -> None:
    endpoint = TokenEndpoint()
    cache = TokenCache(endpoint.fetch)
    tokens = await asyncio.gather(*(cache.get() for _ in range(10)))
    assert set(tokens) == {"token-1"} and endpoint.issued == 1
    assert cache.current == "token-1"


async def test_a_token_is_renewed_a_minute_before_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(oauth.time, "monotonic", lambda: now[0])
    endpoint = TokenEndpoint(expires_in=3600)
    cache = TokenCache(endpoint.fetch)
    assert await cache.get() == "token-1"
    now[0] += 3600 - oauth.EXPIRY_MARGIN - 1
    assert await cache.get() == "token-1"
    now[0] += 1
    assert await cache.get() == "token-2"


async def test_renew_fetches_a_new_token_at_once() -> None:
    endpoint = TokenEndpoint()
    cache = TokenCache(endpoint.fetch)
    await cache.get()
    assert await cache.get(renew=True) == "token-2"
    assert await cache.get() == "token-2"
