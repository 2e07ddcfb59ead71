"""A tenant can't aim the hub at the platform's own network through a credential's URL."""

from __future__ import annotations

import pytest

from opshub.credentials.errors import InvalidSecretError
from opshub.credentials.models import Provider
from opshub.credentials.schemas import validate_secret

TOKEN = "t" * 40


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost/v1",
        "http://10.0.0.5/v1",
        "http://192.168.1.20:11434/v1",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata service
        "http://[::1]:8000/v1",
        "http://db.internal/v1",
        "http://0.0.0.0/v1",
    ],
)
def test_an_internal_model_server_url_is_refused_by_default(url: str) -> None:
    with pytest.raises(InvalidSecretError) as refused:
        validate_secret(Provider.openai_compatible, {"base_url": url})
    assert refused.value.details == {
        "fields": [
            {
                "loc": "body.secret.base_url",
                "message": "the URL points at an internal address, which this hub does not call",
            }
        ]
    }


def test_an_internal_shop_url_is_refused_by_default() -> None:
    with pytest.raises(InvalidSecretError):
        validate_secret(Provider.saleor, {"url": "http://172.16.0.9/graphql/", "token": TOKEN})


@pytest.mark.parametrize(
    ("provider", "secret"),
    [
        (Provider.openai_compatible, {"base_url": "https://models.example.com/v1"}),
        (Provider.saleor, {"url": "https://shop.example.com/graphql/", "token": TOKEN}),
        (Provider.openai_compatible, {"base_url": "http://8.8.8.8/v1"}),
    ],
)
def test_public_urls_are_accepted(provider: Provider, secret: dict[str, str]) -> None:
    assert validate_secret(provider, secret)


def test_an_operator_can_allow_internal_urls_for_self_hosted_models() -> None:
    stored = validate_secret(
        Provider.openai_compatible,
        {"base_url": "http://192.168.1.20:11434/v1"},
        allow_internal_urls=True,
    )
    assert stored == {"base_url": "http://192.168.1.20:11434/v1"}
