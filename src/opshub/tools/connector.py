"""The base of every tool that calls a service the tenant connected (shop, ad platforms, Amazon).

A failure reaches the agent as one short sentence it can act on or pass on: never a stack trace,
never a secret. A credential the service refused is marked invalid where the tenant looks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from crewai.tools import BaseTool
from pydantic import ConfigDict, Field

from opshub.connectors.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorRateLimitedError,
)
from opshub.credentials.errors import CredentialMissingError
from opshub.credentials.models import Provider
from opshub.tools.context import Connectors, ToolContext

T = TypeVar("T")
log = structlog.get_logger(__name__)
# Long enough for the retries a connector makes within its retry policy.
CONNECTOR_TIMEOUT_SECONDS = 90.0
PROVIDER_NAMES = {
    Provider.saleor: "the Saleor shop",
    Provider.google_ads: "Google Ads",
    Provider.meta_ads: "Meta Ads",
    Provider.linkedin_ads: "LinkedIn Ads",
    Provider.amazon_creators: "the Amazon Creators API",
}


class ToolFailure(Exception):
    """Ends a tool call with ``message`` as its result."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectorTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)

    @property
    def connectors(self) -> Connectors:
        if self.context.connectors is None:
            raise ToolFailure("This tool is not available in this run.")
        return self.context.connectors

    def call(self, provider: Provider, operation: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
        """Run ``operation(secret)`` with the tenant's credential for ``provider``."""
        return self.context.run(self._call(provider, operation), CONNECTOR_TIMEOUT_SECONDS)

    async def _call(
        self, provider: Provider, operation: Callable[[dict[str, Any]], Awaitable[T]]
    ) -> T:
        resolver, tenant_id = self.connectors.resolver, self.context.tenant_id
        name = PROVIDER_NAMES.get(provider, provider.value)
        try:
            credential = await resolver.resolve(tenant_id=tenant_id, provider=provider)
        except CredentialMissingError as exc:
            raise ToolFailure(
                f"{name} is not connected for this business: ask the user to add the "
                f"{provider.value} credential (PUT /v1/credentials/{provider.value})."
            ) from exc
        try:
            return await operation(credential.secret)
        except ConnectorAuthError as exc:
            await resolver.mark_invalid(tenant_id=tenant_id, provider=provider, detail=exc.message)
            raise ToolFailure(
                f"{name} refused the stored credential ({exc.message}); it is now marked "
                "invalid: ask the user to reconnect it."
            ) from exc
        except ConnectorRateLimitedError as exc:
            when = f" in about {round(exc.retry_after)} s" if exc.retry_after else " later"
            raise ToolFailure(f"{name} is rate limiting requests: try again{when}.") from exc
        except ConnectorError as exc:
            log.info("connector call failed", provider=provider.value, error=type(exc).__name__)
            raise ToolFailure(f"{name}: {exc.message}") from exc

    def _run(self, **kwargs: Any) -> str:
        try:
            return self.answer(**kwargs)
        except ToolFailure as failure:
            return failure.message

    def answer(self, **kwargs: Any) -> str:
        raise NotImplementedError
