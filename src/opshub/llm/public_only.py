"""CrewAI's hook into its model clients' transport, used to keep a tenant's model URL public."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from crewai.llms.hooks.base import BaseInterceptor

from opshub.outbound import Network, pin, pin_sync


class PublicOnly(BaseInterceptor[httpx.Request, httpx.Response]):
    """Each call goes to a public address of the URL's host, resolved and checked as it is made
    (a self-hosted model's name could resolve to a private address by the time of the call), or
    to an address in one of the ``allowed`` private networks."""

    def __init__(self, *, allowed: Sequence[Network] = ()) -> None:
        self._allowed = allowed

    def on_outbound(self, message: httpx.Request) -> httpx.Request:
        return pin_sync(message, self._allowed)

    def on_inbound(self, message: httpx.Response) -> httpx.Response:
        return message

    async def aon_outbound(self, message: httpx.Request) -> httpx.Request:
        return await pin(message, self._allowed)

    async def aon_inbound(self, message: httpx.Response) -> httpx.Response:
        return message
