"""The base of every tool that calls a service the tenant connected (shop, ad platforms, Amazon).

A failure reaches the agent as one short sentence it can act on or pass on: never a stack trace,
never a secret. A credential the service refused is marked invalid where the tenant looks.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import structlog
from crewai.tools import BaseTool
from pydantic import ConfigDict, Field, ValidationError

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
# A credential's fields whose values are secret: access_token, client_secret, api_key, ...
SECRET_FIELDS = ("token", "secret", "key")


class ToolFailure(Exception):
    """Ends a tool call with ``message`` as its result."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def redacted(text: str, secret: dict[str, Any]) -> str:
    """``text`` without the credential's tokens, secrets and keys."""
    for field, value in secret.items():
        if isinstance(value, str) and len(value) >= 8 and any(w in field for w in SECRET_FIELDS):
            text = text.replace(value, "[redacted]")
    return text


def not_valid(what: str, exc: ValidationError) -> str:
    """A refused argument as one sentence naming each field and what is wrong with it."""
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
    )
    return f"The {what} is not valid: {problems}."


class ConnectorTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    context: ToolContext = Field(exclude=True)
    # What a refused argument is called in the answer ("The request is not valid: ...").
    what: ClassVar[str] = "request"

    @property
    def connectors(self) -> Connectors:
        if self.context.connectors is None:
            raise ToolFailure("This tool is not available in this run.")
        return self.context.connectors

    def call(self, provider: Provider, operation: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
        """Run ``operation(secret)`` with the tenant's credential for ``provider``."""
        try:
            return self.context.run(self._call(provider, operation), CONNECTOR_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            name = PROVIDER_NAMES.get(provider, provider.value)
            raise ToolFailure(
                f"{name} did not answer within {CONNECTOR_TIMEOUT_SECONDS:g} s: try again later."
            ) from exc

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
        except ConnectorError as exc:
            # The service's own words are passed on, but not a secret it echoed back.
            message = redacted(exc.message, credential.secret)
            if isinstance(exc, ConnectorAuthError):
                await resolver.mark_invalid(tenant_id=tenant_id, provider=provider, detail=message)
                raise ToolFailure(
                    f"{name} refused the stored credential ({message}); it is now marked "
                    "invalid: ask the user to reconnect it."
                ) from exc
            if isinstance(exc, ConnectorRateLimitedError):
                when = f" in about {round(exc.retry_after)} s" if exc.retry_after else " later"
                raise ToolFailure(f"{name} is rate limiting requests: try again{when}.") from exc
            log.info("connector call failed", provider=provider.value, error=type(exc).__name__)
            raise ToolFailure(f"{name}: {message}") from exc

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """CrewAI's entry point. Arguments the args_schema refuses get the one-sentence answer
        ``_run`` gives, not CrewAI's error (a pydantic dump followed by the whole JSON schema)."""
        if not args:
            try:
                self.args_schema.model_validate(kwargs)
            except ValidationError as exc:
                return not_valid(self.what, exc)
        return super().run(*args, **kwargs)

    def _run(self, **kwargs: Any) -> str:
        try:
            return self.answer(**kwargs)
        except ToolFailure as failure:
            return failure.message
        except ValidationError as exc:  # ``answer`` reads its arguments with the args_schema
            return not_valid(self.what, exc)

    @abstractmethod
    def answer(self, **kwargs: Any) -> str:
        """The tool's answer for the model; raises ``ToolFailure`` to answer a failure."""
