"""The CrewAI ``LLM`` for a tenant, provider and model, paid with the key the resolver picks.

Building an ``LLM`` costs ~75 ms (two SDK clients), so instances are kept per (tenant, provider,
model, key fingerprint): a new key is a new entry, and an old key's entry ages out. The key is
always passed explicitly; nothing falls back to OPENAI_API_KEY in the environment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opshub.config import Settings
from opshub.credentials.errors import CredentialInvalidError
from opshub.credentials.models import MODEL_PROVIDERS, Provider, Source
from opshub.credentials.resolver import CredentialResolver
from opshub.errors import DomainError, InvalidInputError
from opshub.llm.classify import classify_provider_error
from opshub.llm.crewai_setup import prepare_crewai

if TYPE_CHECKING:
    from crewai import LLM

CACHE_SIZE = 512


@dataclass(frozen=True)
class TenantLLM:
    # CrewAI's LLM shows its api_key in its repr: it stays out of this one.
    llm: LLM = field(repr=False)
    provider: Provider
    model: str
    billed_to: Source
    fingerprint: str


class LLMFactory:
    def __init__(self, *, resolver: CredentialResolver, settings: Settings) -> None:
        self._resolver = resolver
        self._settings = settings
        self._cache: OrderedDict[tuple[uuid.UUID, Provider, str, str], TenantLLM] = OrderedDict()
        prepare_crewai(settings.data_dir)

    async def for_tenant(
        self, *, tenant_id: uuid.UUID, provider: Provider, model: str
    ) -> TenantLLM:
        if provider not in MODEL_PROVIDERS:
            raise InvalidInputError(f"{provider.value} is not a model provider")
        credential = await self._resolver.resolve(tenant_id=tenant_id, provider=provider)
        key = (tenant_id, provider, model, credential.fingerprint)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        llm = await asyncio.to_thread(self._construct, provider, model, credential.secret)
        built = TenantLLM(llm, provider, model, credential.source, credential.fingerprint)
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

    def _construct(self, provider: Provider, model: str, secret: dict[str, Any]) -> LLM:
        from crewai import LLM  # a heavy import: only processes that run crews pay for it

        common: dict[str, Any] = {
            "timeout": self._settings.llm_timeout_seconds,
            # The SDKs retry 408/409/429/5xx (and Anthropic's 529) with backoff, honouring
            # Retry-After, and never retry 401/403.
            "max_retries": self._settings.llm_max_retries,
        }
        if provider is Provider.anthropic:
            return LLM(
                model=f"anthropic/{model}",
                api_key=secret["api_key"],
                base_url=self._settings.anthropic_base_url,
                **common,
            )
        if provider is Provider.openai_compatible:
            return LLM(
                model=f"openai/{model}",
                # Servers without auth still need a non-empty key for the SDK.
                api_key=secret.get("api_key") or "no-key",
                base_url=str(secret["base_url"]),
                **common,
            )
        return LLM(
            model=f"openai/{model}",
            api_key=secret["api_key"],
            base_url=self._settings.openai_base_url,
            organization=secret.get("organization"),
            **common,
        )
