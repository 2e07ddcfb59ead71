"""One OAuth access token per client, reused until shortly before it expires.

Google Ads (refresh-token grant) and Amazon Creators (client-credentials grant) fetch tokens
differently but keep them alike: one fetch at a time, renewed a minute early so a token never
dies between check and use, and renewed at once when the API refuses it (revoked or expired early).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

# Renew a little before the provider's expiry so a token never dies between check and use.
EXPIRY_MARGIN = 60.0


class AccessToken(NamedTuple):
    value: str
    expires_in: float


class TokenCache:
    def __init__(self, fetch: Callable[[], Awaitable[AccessToken]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def current(self) -> str | None:
        """The token last fetched, so that error text can be scrubbed of it."""
        return self._token

    async def get(self, *, renew: bool = False) -> str:
        async with self._lock:
            if not renew and self._token and time.monotonic() < self._expires_at:
                return self._token
            token = await self._fetch()
            self._token = token.value
            self._expires_at = time.monotonic() + max(0.0, token.expires_in - EXPIRY_MARGIN)
            return token.value
