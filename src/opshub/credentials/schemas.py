"""The secret each provider needs, validated before it is stored, and what the API shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import jwt
from pydantic import BaseModel, Field, HttpUrl, ValidationError, field_validator

from opshub.credentials.errors import InvalidSecretError
from opshub.credentials.models import Health, Provider, Source
from opshub.outbound import Network, in_allowed_networks, is_internal_name
from opshub.schemas import StrictInput

# Visible ASCII only: a key pasted with a zero-width or non-breaking space can never be sent in
# an HTTP header, so it is refused (422) rather than stored and reported as unreachable.
Token = Annotated[str, Field(min_length=8, max_length=4096, pattern=r"^[\x21-\x7e]+$")]
Short = Annotated[str, Field(min_length=1, max_length=512)]
Digits = Annotated[str, Field(pattern=r"^\d{1,20}$")]


class OpenAISecret(StrictInput):
    api_key: Token
    organization: Short | None = None


class AnthropicSecret(StrictInput):
    api_key: Token


class OpenAICompatibleSecret(StrictInput):
    base_url: HttpUrl
    api_key: Token | None = Field(default=None, description="Omit for servers without auth.")
    model: Short | None = Field(
        default=None,
        description="The model this server serves, used wherever no crew setting names another.",
    )


class GoogleAdsSecret(StrictInput):
    client_id: Short
    client_secret: Token
    refresh_token: Token
    developer_token: Token
    login_customer_id: Digits
    customer_id: Digits | None = None


class MetaAdsSecret(StrictInput):
    access_token: Token
    ad_account_id: Short
    app_secret: Token | None = None


class LinkedInAdsSecret(StrictInput):
    access_token: Token
    ad_account_id: Digits
    refresh_token: Token | None = None
    client_id: Short | None = None
    client_secret: Token | None = None


class AmazonCreatorsSecret(StrictInput):
    client_id: Short
    client_secret: Token
    partner_tag: Short
    credential_version: Literal["2.1", "2.2", "3.0"] = "3.0"
    marketplace: Short = "www.amazon.com"


def _is_jwt(token: str) -> bool:
    """A JSON Web Token (read, not verified: only its shape matters here)."""
    try:
        jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return True


class SaleorSecret(StrictInput):
    url: HttpUrl
    token: Token = Field(description="An App token: Saleor's staff tokens expire in 5 minutes.")

    @field_validator("token")
    @classmethod
    def _an_app_token(cls, token: str) -> str:
        if _is_jwt(token):
            raise ValueError(
                "this is a staff user's token (a JWT from tokenCreate), which Saleor expires "
                "after 5 minutes: create an App in the Saleor dashboard with the permissions "
                "the crews need and store its token instead"
            )
        return token


SECRET_SCHEMAS: dict[Provider, type[StrictInput]] = {
    Provider.openai: OpenAISecret,
    Provider.anthropic: AnthropicSecret,
    Provider.openai_compatible: OpenAICompatibleSecret,
    Provider.google_ads: GoogleAdsSecret,
    Provider.meta_ads: MetaAdsSecret,
    Provider.linkedin_ads: LinkedInAdsSecret,
    Provider.amazon_creators: AmazonCreatorsSecret,
    Provider.saleor: SaleorSecret,
}
# The field whose fingerprint and last four characters identify the secret.
IDENTIFYING_FIELD: dict[Provider, str] = {
    Provider.openai: "api_key",
    Provider.anthropic: "api_key",
    Provider.openai_compatible: "api_key",
    Provider.google_ads: "refresh_token",
    Provider.meta_ads: "access_token",
    Provider.linkedin_ads: "access_token",
    Provider.amazon_creators: "client_secret",
    Provider.saleor: "token",
}


# Secrets that name a server the hub will call: a tenant must not aim the hub at the platform's
# own network (server-side request forgery) unless the operator allows it.
URL_FIELDS = {Provider.openai_compatible: "base_url", Provider.saleor: "url"}


def validate_secret(
    provider: Provider,
    secret: dict[str, Any],
    *,
    allow_internal_urls: bool = False,
    allowed_networks: Sequence[Network] = (),
) -> dict[str, Any]:
    """The secret in its stored form, or InvalidSecretError naming the fields (never values)."""
    try:
        model = SECRET_SCHEMAS[provider].model_validate(secret)
    except ValidationError as exc:
        fields = [
            {"loc": "body.secret." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_input=False)
        ]
        raise InvalidSecretError(
            f"the secret is not a valid {provider.value} credential", details={"fields": fields}
        ) from None
    url_field = URL_FIELDS.get(provider)
    if url_field and not allow_internal_urls:
        host = (getattr(model, url_field).host or "").lower()
        if is_internal_name(host) and not in_allowed_networks(host, allowed_networks):
            message = "the URL points at an internal address, which this hub does not call"
            raise InvalidSecretError(
                message,
                details={"fields": [{"loc": f"body.secret.{url_field}", "message": message}]},
            )
    return model.model_dump(mode="json", exclude_none=True)


class CredentialPut(StrictInput):
    secret: dict[str, Any]
    label: Annotated[str, Field(max_length=200)] | None = None


class CredentialRead(BaseModel):
    provider: Provider
    label: str | None = None
    fingerprint: str
    last4: str
    status: Health
    status_detail: str | None = None
    checked_at: datetime | None = None
    updated_at: datetime


class CredentialSummary(BaseModel):
    """Per provider: where a call's key would come from, and how healthy the tenant's key is."""

    provider: Provider
    source: Source
    status: Health
    checked_at: datetime | None = None
    fingerprint: str | None = None
    last4: str | None = None
