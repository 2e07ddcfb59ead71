"""What a credential is: its provider, its health, and who pays for the calls it makes."""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    openai = "openai"
    anthropic = "anthropic"
    openai_compatible = "openai_compatible"
    google_ads = "google_ads"
    meta_ads = "meta_ads"
    linkedin_ads = "linkedin_ads"
    amazon_creators = "amazon_creators"
    saleor = "saleor"


MODEL_PROVIDERS = frozenset({Provider.openai, Provider.anthropic, Provider.openai_compatible})


class Health(StrEnum):
    unchecked = "unchecked"
    healthy = "healthy"
    invalid = "invalid"
    rate_limited = "rate_limited"
    unreachable = "unreachable"


class Source(StrEnum):
    byok = "byok"
    platform = "platform"
    none = "none"
