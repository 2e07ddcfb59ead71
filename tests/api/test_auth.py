"""Logging in, the credentials every request carries, roles, and the login rate limit."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls
from tests.conftest import TenantHandle


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, response.text
    assert isinstance(error["message"], str) and error["message"]
    return error


async def login(client: AsyncClient, email: str, password: str) -> Response:
    return await client.post("/v1/auth/token", json={"email": email, "password": password})


async def session_token(client: AsyncClient, tenant: TenantHandle) -> str:
    response = await login(client, tenant.email, tenant.password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def create_key(client: AsyncClient, tenant: TenantHandle, role: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/keys", json={"name": f"{role} key", "role": role}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def start_of_a_fresh_window(needed_seconds: float = 15) -> None:
    """Wait out the current one-minute limiter window if it ends before the test could finish."""
    remaining = 60 - time.time() % 60
    if remaining < needed_seconds:
        await asyncio.sleep(remaining + 0.2)


async def test_login_returns_a_jwt_that_authenticates_me(
    client: AsyncClient, tenant_a: TenantHandle, settings: Settings
) -> None:
    response = await login(client, tenant_a.email, tenant_a.password)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.jwt_ttl_seconds
    me = await client.get("/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert me.json() == {
        "tenant_id": str(tenant_a.id),
        "role": "owner",
        "kind": "user",
        "subject_id": claims["sub"],
    }


async def test_login_ignores_case_and_surrounding_spaces_in_the_email(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await login(client, f"  {tenant_a.email.upper()} ", tenant_a.password)

    assert response.status_code == 200, response.text


async def test_wrong_password_is_401_invalid_credentials(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await login(client, tenant_a.email, "not the password")

    assert_error(response, 401, "invalid_credentials")
    assert "access_token" not in response.text


async def test_unknown_email_gets_exactly_the_answer_a_wrong_password_gets(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    wrong_password = await login(client, tenant_a.email, "not the password")
    unknown_email = await login(client, f"nobody-{secrets.token_hex(6)}@example.com", "whatever")

    assert_error(unknown_email, 401, "invalid_credentials")
    assert unknown_email.json() == wrong_password.json()
    assert unknown_email.headers.get("www-authenticate") == wrong_password.headers.get(
        "www-authenticate"
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}],
    ids=["no-header", "basic-scheme", "empty-bearer"],
)
async def test_missing_credentials_is_401_missing_credentials(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/v1/data/leads", headers=headers)

    assert_error(response, 401, "missing_credentials")


async def test_token_signed_with_another_key_is_401_invalid_token(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    claims = jwt.decode(await session_token(client, tenant_a), options={"verify_signature": False})
    forged = jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256")

    response = await client.get("/v1/auth/me", headers=bearer(forged))

    assert_error(response, 401, "invalid_token")


async def test_unsigned_alg_none_token_is_401_invalid_token(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    claims = jwt.decode(await session_token(client, tenant_a), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")

    response = await client.get("/v1/auth/me", headers=bearer(unsigned))

    assert_error(response, 401, "invalid_token")


async def test_token_for_another_tenant_claim_is_401_invalid_token(
    client: AsyncClient, app: FastAPI, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    claims = jwt.decode(await session_token(client, tenant_a), options={"verify_signature": False})
    claims["tid"] = str(tenant_b.id)
    tampered = jwt.encode(claims, app.state.opshub.jwt_secret, algorithm="HS256")

    response = await client.get("/v1/data/leads", headers=bearer(tampered))

    assert_error(response, 401, "invalid_token")


async def test_expired_token_is_401_token_expired(
    client: AsyncClient, app: FastAPI, tenant_a: TenantHandle
) -> None:
    claims = jwt.decode(await session_token(client, tenant_a), options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 7200, exp=now - 60)
    expired = jwt.encode(claims, app.state.opshub.jwt_secret, algorithm="HS256")

    response = await client.get("/v1/auth/me", headers=bearer(expired))

    assert_error(response, 401, "token_expired")


async def test_garbage_api_key_is_401_invalid_api_key(client: AsyncClient) -> None:
    response = await client.get("/v1/auth/me", headers=bearer("ohk_" + secrets.token_urlsafe(32)))

    assert_error(response, 401, "invalid_api_key")


async def test_revoked_key_is_refused_on_the_very_next_request(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    key = await create_key(client, tenant_a, "member")
    assert (await client.get("/v1/auth/me", headers=bearer(key["key"]))).status_code == 200

    revoked = await client.delete(f"/v1/keys/{key['id']}", headers=tenant_a.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None

    response = await client.get("/v1/data/leads", headers=bearer(key["key"]))
    assert_error(response, 401, "invalid_api_key")


async def test_a_key_that_revokes_itself_stops_working_at_once(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    key = await create_key(client, tenant_a, "admin")

    revoked = await client.delete(f"/v1/keys/{key['id']}", headers=bearer(key["key"]))
    assert revoked.status_code == 200, revoked.text

    assert_error(await client.get("/v1/keys", headers=bearer(key["key"])), 401, "invalid_api_key")


async def test_viewer_key_reads_data_but_cannot_write_it(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    seeded = await client.post("/v1/data/leads", json={"name": "Seed"}, headers=tenant_a.headers)
    assert seeded.status_code == 201, seeded.text
    lead_id = seeded.json()["id"]
    viewer = bearer((await create_key(client, tenant_a, "viewer"))["key"])

    listed = await client.get("/v1/data/leads", headers=viewer)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [lead_id]
    assert (await client.get(f"/v1/data/leads/{lead_id}", headers=viewer)).status_code == 200

    assert_error(
        await client.post("/v1/data/leads", json={"name": "Nope"}, headers=viewer), 403, "forbidden"
    )
    assert_error(
        await client.patch(f"/v1/data/leads/{lead_id}", json={"name": "X"}, headers=viewer),
        403,
        "forbidden",
    )
    assert_error(await client.delete(f"/v1/data/leads/{lead_id}", headers=viewer), 403, "forbidden")
    after = await client.get(f"/v1/data/leads/{lead_id}", headers=tenant_a.headers)
    assert after.json()["name"] == "Seed"
    assert len((await client.get("/v1/data/leads", headers=tenant_a.headers)).json()["items"]) == 1


async def test_member_key_writes_data_but_cannot_manage_keys(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    member = bearer((await create_key(client, tenant_a, "member"))["key"])

    created = await client.post("/v1/data/leads", json={"name": "Ok"}, headers=member)
    assert created.status_code == 201, created.text
    assert_error(
        await client.post("/v1/keys", json={"name": "x", "role": "viewer"}, headers=member),
        403,
        "forbidden",
    )
    assert_error(await client.get("/v1/keys", headers=member), 403, "forbidden")


async def test_a_jwt_user_gets_their_role_from_the_database_not_the_token(
    client: AsyncClient, app: FastAPI, tenant_a: TenantHandle
) -> None:
    claims = jwt.decode(await session_token(client, tenant_a), options={"verify_signature": False})
    claims["role"] = "viewer"
    token = jwt.encode(claims, app.state.opshub.jwt_secret, algorithm="HS256")

    me = await client.get("/v1/auth/me", headers=bearer(token))

    assert me.status_code == 200, me.text
    assert me.json()["role"] == "owner"


async def test_401_responses_carry_www_authenticate_bearer(
    client: AsyncClient, tenant_a: TenantHandle, settings: Settings
) -> None:
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    responses = {
        "missing": await client.get("/v1/auth/me"),
        "garbage jwt": await client.get("/v1/auth/me", headers=bearer("not-a-jwt")),
        "garbage key": await client.get("/v1/auth/me", headers=bearer("ohk_nope")),
        "wrong password": await login(client, tenant_a.email, "not the password"),
        "wrong admin token": await client.get(
            "/v1/admin/tenants", headers=bearer(admin_token + "x")
        ),
    }

    for name, response in responses.items():
        assert response.status_code == 401, (name, response.text)
        assert response.headers.get("www-authenticate") == "Bearer", name
        assert response.json()["error"]["code"], name


async def test_login_is_rate_limited_per_email(
    client: AsyncClient, make_tenant: Any, settings: Settings
) -> None:
    target = await make_tenant("Rate Limited")
    bystander = await make_tenant("Bystander")
    await start_of_a_fresh_window()

    for attempt in range(settings.login_attempts_per_minute):
        response = await login(client, target.email, f"wrong-{attempt}")
        assert_error(response, 401, "invalid_credentials")

    limited = await login(client, target.email, "wrong again")
    assert_error(limited, 429, "rate_limited")
    retry_after = int(limited.headers["retry-after"])
    assert 0 < retry_after <= 60
    # Even the right password waits, or the limit would be an oracle for guessing it; and the
    # same address spelled differently is the same address.
    assert_error(await login(client, target.email, target.password), 429, "rate_limited")
    assert_error(
        await login(client, f" {target.email.upper()} ", target.password), 429, "rate_limited"
    )
    # Someone else is not locked out by it.
    assert_error(await login(client, bystander.email, "wrong"), 401, "invalid_credentials")
    assert (await login(client, bystander.email, bystander.password)).status_code == 200


async def test_a_disabled_users_still_valid_jwt_is_rejected(
    client: AsyncClient, tenant_a: TenantHandle, owner_engine: AsyncEngine
) -> None:
    token = await session_token(client, tenant_a)
    assert (await client.get("/v1/auth/me", headers=bearer(token))).status_code == 200

    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET disabled_at = now() WHERE email = :email"),
            {"email": tenant_a.email},
        )

    response = await client.get("/v1/data/leads", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate") == "Bearer"
    assert_error(await login(client, tenant_a.email, tenant_a.password), 401, "invalid_credentials")


async def test_login_works_while_redis_is_away_and_is_still_limited(
    settings: Settings, urls: DatabaseUrls, tenant_a: TenantHandle
) -> None:
    away = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    app = create_app(away, urls)
    await start_of_a_fresh_window()
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as client,
    ):
        signed_in = await login(client, tenant_a.email, tenant_a.password)
        assert signed_in.status_code == 200, signed_in.text
        assert (
            await client.get("/v1/auth/me", headers=bearer(signed_in.json()["access_token"]))
        ).status_code == 200
        for _ in range(away.login_attempts_per_minute - 1):
            await login(client, tenant_a.email, "wrong password")
        assert_error(await login(client, tenant_a.email, "wrong password"), 429, "rate_limited")
