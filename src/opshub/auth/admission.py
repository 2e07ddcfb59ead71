"""Requests of one credential (an API key, a session) waiting for or holding a database
connection: at most ``per_credential`` at once. The rest wait their turn behind each other, not
in the connection pool's queue ahead of every other tenant's requests, so one tenant sending
hundreds of requests at once can't take the pool from the others.

Keyed by a digest of the bearer string, before it is authenticated (that needs a connection);
the tenant's token bucket still applies after authentication, whatever keys it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class _Turns:
    slots: asyncio.Semaphore
    users: int = 0


class CredentialAdmission:
    def __init__(self, *, per_credential: int) -> None:
        self._per_credential = per_credential
        self._turns: dict[bytes, _Turns] = {}

    @contextlib.asynccontextmanager
    async def turn(self, credential: str) -> AsyncIterator[None]:
        key = hashlib.sha256(credential.encode()).digest()
        turns = self._turns.get(key)
        if turns is None:
            turns = self._turns[key] = _Turns(asyncio.Semaphore(self._per_credential))
        turns.users += 1
        try:
            async with turns.slots:
                yield
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[key]
