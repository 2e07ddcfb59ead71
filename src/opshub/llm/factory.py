"""Model clients for a tenant, provider and model, paid with the key the resolver picks.

Building a client costs ~75 ms (two SDK clients), so they are kept per (tenant, provider, model,
digest of the whole secret): a new key, or the same key moved to another server, is a new entry,
and an old entry ages out. The key is always passed explicitly; nothing falls back to
OPENAI_API_KEY in the environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import asyncpg
import httpx
from pydantic import SecretStr

from opshub.config import Settings
from opshub.credentials.errors import CredentialInvalidError
from opshub.credentials.models import MODEL_PROVIDERS, Provider, Source
from opshub.credentials.resolver import CredentialResolver
from opshub.db.engine import tenant_transaction
from opshub.errors import DomainError, InvalidInputError
from opshub.llm import fallback
from opshub.llm.classify import classify_provider_error
from opshub.llm.crewai_setup import prepare_crewai
from opshub.outbound import PublicOnlySyncTransport, PublicOnlyTransport

if TYPE_CHECKING:
    from crewai import LLM
    from langchain_core.language_models import BaseChatModel

CACHE_SIZE = 512
ModelT = TypeVar("ModelT")


@dataclass(frozen=True)
class TenantLLM(Generic[ModelT]):
    # CrewAI's LLM shows its api_key in its repr: it stays out of this one.
    llm: ModelT = field(repr=False)
    provider: Provider
    model: str
    billed_to: Source
    fingerprint: str


class LLMFactory:
    """CrewAI LLMs for crews and LangChain chat models for routing, per tenant and key."""

    def __init__(
        self, *, pool: asyncpg.Pool, resolver: CredentialResolver, settings: Settings
    ) -> None:
        self._pool = pool
        self._resolver = resolver
        self._settings = settings
        self._cache: OrderedDict[tuple[str, uuid.UUID, Provider, str, str], TenantLLM[Any]] = (
            OrderedDict()
        )
        prepare_crewai(settings.data_dir)

    async def for_tenant(
        self, *, tenant_id: uuid.UUID, provider: Provider, model: str
    ) -> TenantLLM[LLM]:
        return await self._build("crewai", tenant_id, provider, model, self._crewai_llm)

    async def default_for(self, *, tenant_id: uuid.UUID, provider: Provider) -> TenantLLM[LLM]:
        """The provider's model where no crew setting names one: the model an openai_compatible
        secret says its server serves, else the deployment's default for the provider."""
        credential = await self._resolver.resolve(tenant_id=tenant_id, provider=provider)
        model = credential.secret.get("model") or self._settings.default_models[provider.value]
        return await self.for_tenant(tenant_id=tenant_id, provider=provider, model=model)

    async def chat_model_for(
        self, *, tenant_id: uuid.UUID, provider: Provider, model: str
    ) -> TenantLLM[BaseChatModel]:
        return await self._build("langchain", tenant_id, provider, model, self._chat_model)

    async def fallback_for(
        self, *, tenant_id: uuid.UUID, failed: Provider
    ) -> TenantLLM[LLM] | None:
        """The tenant's fallback model when ``failed`` is down; None without one (or if the
        fallback is on the provider that failed)."""
        async with tenant_transaction(self._pool, tenant_id) as conn:
            choice = await fallback.get(conn, tenant_id=tenant_id)
        if choice is None or choice.provider is failed:
            return None
        return await self.for_tenant(
            tenant_id=tenant_id, provider=choice.provider, model=choice.model
        )

    async def _build(
        self,
        kind: str,
        tenant_id: uuid.UUID,
        provider: Provider,
        model: str,
        construct: Callable[[Provider, str, dict[str, Any]], ModelT],
    ) -> TenantLLM[ModelT]:
        if provider not in MODEL_PROVIDERS:
            raise InvalidInputError(f"{provider.value} is not a model provider")
        credential = await self._resolver.resolve(tenant_id=tenant_id, provider=provider)
        key = (kind, tenant_id, provider, model, secret_digest(credential.secret))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        client = await asyncio.to_thread(construct, provider, model, credential.secret)
        built = TenantLLM(client, provider, model, credential.source, credential.fingerprint)
        self._cache[key] = built
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return built

    async def report_failure(
        self, *, tenant_id: uuid.UUID, provider: Provider, error: BaseException
    ) -> DomainError | None:
        """Classify a failed model call; a refused BYOK key is marked invalid for the tenant."""
        classified = classify_provider_error(error, provider=provider.value)
        if isinstance(classified, CredentialInvalidError):
            await self._resolver.mark_invalid(
                tenant_id=tenant_id, provider=provider, detail="the provider refused the key"
            )
        return classified

    def _endpoint(self, provider: Provider, secret: dict[str, Any]) -> tuple[str, str]:
        """(api key, base URL) for a provider; the key is always explicit, never ambient."""
        if provider is Provider.anthropic:
            return secret["api_key"], self._settings.anthropic_base_url
        if provider is Provider.openai_compatible:
            # Servers without auth still need a non-empty key for the SDK.
            return secret.get("api_key") or "no-key", str(secret["base_url"])
        return secret["api_key"], self._settings.openai_base_url

    def _crewai_llm(self, provider: Provider, model: str, secret: dict[str, Any]) -> LLM:
        from crewai import LLM  # a heavy import: only processes that run crews pay for it

        api_key, base_url = self._endpoint(provider, secret)
        prefix = "anthropic" if provider is Provider.anthropic else "openai"
        extra: dict[str, Any] = (
            {"organization": secret["organization"]} if "organization" in secret else {}
        )
        if self._tenant_chosen(provider):
            from opshub.llm.public_only import PublicOnly

            extra["interceptor"] = PublicOnly(allowed=self._settings.allowed_private_networks)
        return LLM(
            model=f"{prefix}/{model}",
            api_key=api_key,
            base_url=base_url,
            timeout=self._settings.llm_timeout_seconds,
            # The SDKs retry 408/409/429/5xx (and Anthropic's 529) with backoff, honouring
            # Retry-After, and never retry 401/403.
            max_retries=self._settings.llm_max_retries,
            **extra,
        )

    def _chat_model(self, provider: Provider, model: str, secret: dict[str, Any]) -> BaseChatModel:
        api_key, base_url = self._endpoint(provider, secret)
        timeout, retries = self._settings.llm_timeout_seconds, self._settings.llm_max_retries
        if provider is Provider.anthropic:
            from langchain_anthropic import ChatAnthropic

            return ChatAnthropic(
                model=model,
                api_key=SecretStr(api_key),
                base_url=base_url,
                timeout=timeout,
                max_retries=retries,
            )
        from langchain_openai import ChatOpenAI

        clients: dict[str, Any] = {}
        if self._tenant_chosen(provider):
            allowed = self._settings.allowed_private_networks
            clients = {
                "http_client": httpx.Client(transport=PublicOnlySyncTransport(allowed=allowed)),
                "http_async_client": httpx.AsyncClient(
                    transport=PublicOnlyTransport(allowed=allowed)
                ),
            }
        return ChatOpenAI(
            organization=secret.get("organization"),
            model=model,
            api_key=SecretStr(api_key),
            base_url=base_url,
            timeout=timeout,
            max_retries=retries,
            **clients,
        )

    def _tenant_chosen(self, provider: Provider) -> bool:
        """The base URL is the tenant's (a self-hosted model): checked at every call."""
        return provider is Provider.openai_compatible and not self._settings.allow_internal_urls


def secret_digest(secret: dict[str, Any]) -> str:
    """Tells apart every secret a client is built from (key, base URL, model, organization)."""
    canonical = json.dumps(secret, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
