"""A Saleor credential must last: an App token is kept, a staff JWT (5 minutes) is refused."""

from __future__ import annotations

import time

import jwt
import pytest

from opshub.credentials.errors import InvalidSecretError
from opshub.credentials.models import Provider
from opshub.credentials.schemas import validate_secret

URL = "https://shop.example.com/graphql/"


def test_a_staff_jwt_is_refused_with_the_way_to_an_app_token() -> None:
    claims = {"token": "access", "email": "staff@example.com", "exp": int(time.time()) + 300}
    staff_token = jwt.encode(claims, "saleor-secret-key-0123456789abcdef", algorithm="HS256")

    with pytest.raises(InvalidSecretError) as refused:
        validate_secret(Provider.saleor, {"url": URL, "token": staff_token})

    (field,) = refused.value.details["fields"]
    assert field["loc"] == "body.secret.token"
    assert "expires after 5 minutes" in field["message"]
    assert "create an App" in field["message"]
    assert staff_token not in str(refused.value.details)


def test_an_app_token_is_kept() -> None:
    app_token = "Xk2v9QwLmN4pR7sT1uV3yZ5aB8cD0e"  # the shape of Saleor's App tokens
    stored = validate_secret(Provider.saleor, {"url": URL, "token": app_token})
    assert stored["token"] == app_token
