"""A deployment names the private networks tenants' self-hosted servers may be on (a GPU box,
Ollama on the LAN): those addresses are accepted, every other internal one is still refused."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from opshub.config import Settings
from opshub.credentials.errors import InvalidSecretError
from opshub.credentials.models import Provider
from opshub.credentials.schemas import validate_secret

LAN = [ip_network("192.168.1.0/24"), ip_network("fd00:1::/64")]


@pytest.mark.parametrize(
    "url", ["http://192.168.1.20:11434/v1", "http://192.168.1.254/v1", "http://[fd00:1::7]:8000/v1"]
)
def test_a_server_on_an_allowed_network_is_accepted(url: str) -> None:
    secret = {"base_url": url, "model": "llama3.1:8b"}
    stored = validate_secret(Provider.openai_compatible, secret, allowed_networks=LAN)
    assert stored == secret


@pytest.mark.parametrize(
    "url",
    [
        "http://192.168.2.20:11434/v1",  # the next network over
        "http://10.0.0.5/v1",
        "http://127.0.0.1:8000/v1",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata stays out of reach
        "http://localhost:11434/v1",
    ],
)
def test_other_internal_addresses_stay_refused(url: str) -> None:
    with pytest.raises(InvalidSecretError):
        validate_secret(Provider.openai_compatible, {"base_url": url}, allowed_networks=LAN)


def test_the_setting_takes_comma_separated_cidrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSHUB_ALLOWED_PRIVATE_NETWORKS", "192.168.1.0/24, fd00:1::/64")
    assert Settings().allowed_private_networks == LAN


def test_a_malformed_network_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSHUB_ALLOWED_PRIVATE_NETWORKS", "192.168.1.0/33")
    with pytest.raises(ValueError, match="allowed_private_networks"):
        Settings()
