"""Tenant API keys (/v1/keys) and platform administration (/v1/admin/tenants)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import pytest
from httpx import AsyncClient, Response

from opshub.config import Settings
from tests.conftest import TenantHandle


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


@pytest.fixture
def admin_headers(settings: Settings) -> dict[str, str]:
    assert settings.admin_token is not None
    return bearer(settings.admin_token.get_secret_value())


def new_tenant_body(**overrides: str) -> dict[str, str]:
    body = {
        "name": f"Platform Tenant {secrets.token_hex(4)}",
        "owner_email": f"platform-{secrets.token_hex(6)}@example.com",
        "password": "a long enough password",
    }
    body.update(overrides)
    return body


async def create_key(
    client: AsyncClient, headers: dict[str, str], role: str, name: str = "ci"
) -> Response:
    return await client.post("/v1/keys", json={"name": name, "role": role}, headers=headers)


async def test_admin_creates_a_key_that_is_shown_once_and_works(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    created = await create_key(client, tenant_a.headers, "member", name="deploy bot")

    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith("ohk_") and len(key) > 40
    assert body["name"] == "deploy bot" and body["role"] == "member"
    assert body["revoked_at"] is None
    assert key.startswith(body["prefix"]) and body["prefix"] != key

    listed = await client.get("/v1/keys", headers=tenant_a.headers)
    assert listed.status_code == 200, listed.text
    entry = next(k for k in listed.json() if k["id"] == body["id"])
    assert entry == {k: v for k, v in body.items() if k != "key"}
    digest = hashlib.sha256(key.encode()).digest()
    for leaked in (key, key[len(body["prefix"]) :], digest.hex(), digest.hex().upper()):
        assert leaked not in listed.text
    assert all(
        set(k) == {"id", "name", "prefix", "role", "created_at", "revoked_at"}
        for k in listed.json()
    )

    me = await client.get("/v1/auth/me", headers=bearer(key))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "tenant_id": str(tenant_a.id),
        "role": "member",
        "kind": "api_key",
        "subject_id": body["id"],
    }


async def test_a_key_cannot_be_created_with_a_higher_role_than_its_creator(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    admin = await create_key(client, tenant_a.headers, "admin")
    admin_headers = bearer(admin.json()["key"])

    assert_error(await create_key(client, admin_headers, "owner"), 403, "forbidden")
    same_role = await create_key(client, admin_headers, "admin")
    assert same_role.status_code == 201, same_role.text
    lower_role = await create_key(client, admin_headers, "viewer")
    assert lower_role.status_code == 201, lower_role.text
    roles = [k["role"] for k in (await client.get("/v1/keys", headers=tenant_a.headers)).json()]
    assert sorted(roles) == ["admin", "admin", "owner", "viewer"]


async def test_an_admin_cannot_revoke_a_key_of_a_higher_role(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    admin = bearer((await create_key(client, tenant_a.headers, "admin")).json()["key"])
    owner_key = next(
        k
        for k in (await client.get("/v1/keys", headers=tenant_a.headers)).json()
        if k["role"] == "owner"
    )

    assert_error(
        await client.delete(f"/v1/keys/{owner_key['id']}", headers=admin), 403, "forbidden"
    )
    assert (await client.get("/v1/auth/me", headers=tenant_a.headers)).status_code == 200
    member = (await create_key(client, tenant_a.headers, "member")).json()
    revoked = await client.delete(f"/v1/keys/{member['id']}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None


async def test_keys_of_another_tenant_are_neither_listed_nor_revocable(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    b_key = (await create_key(client, tenant_b.headers, "member")).json()

    a_keys = (await client.get("/v1/keys", headers=tenant_a.headers)).json()
    assert b_key["id"] not in {k["id"] for k in a_keys}
    assert_error(
        await client.delete(f"/v1/keys/{b_key['id']}", headers=tenant_a.headers), 404, "not_found"
    )

    assert (await client.get("/v1/auth/me", headers=bearer(b_key["key"]))).status_code == 200
    b_keys = (await client.get("/v1/keys", headers=tenant_b.headers)).json()
    assert next(k for k in b_keys if k["id"] == b_key["id"])["revoked_at"] is None


async def test_revoking_an_unknown_key_is_404(client: AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.delete(
        "/v1/keys/00000000-0000-4000-8000-000000000000", headers=tenant_a.headers
    )

    assert_error(response, 404, "not_found")


async def test_platform_admin_creates_a_tenant_whose_key_and_owner_login_work(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = new_tenant_body(plan="enterprise")

    created = await client.post("/v1/admin/tenants", json=body, headers=admin_headers)

    assert created.status_code == 201, created.text
    tenant = created.json()
    assert tenant["name"] == body["name"] and tenant["plan"] == "enterprise"
    assert tenant["api_key"].startswith("ohk_")
    assert body["password"] not in created.text
    me = await client.get("/v1/auth/me", headers=bearer(tenant["api_key"]))
    assert me.status_code == 200, me.text
    assert me.json()["tenant_id"] == tenant["id"] and me.json()["role"] == "owner"
    login = await client.post(
        "/v1/auth/token", json={"email": body["owner_email"], "password": body["password"]}
    )
    assert login.status_code == 200, login.text
    # The new tenant starts empty.
    leads = await client.get("/v1/data/leads", headers=bearer(tenant["api_key"]))
    assert leads.json() == {"items": [], "next_cursor": None}


async def test_platform_admin_lists_the_tenants_it_created(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = (
        await client.post("/v1/admin/tenants", json=new_tenant_body(), headers=admin_headers)
    ).json()

    listed = await client.get("/v1/admin/tenants", headers=admin_headers)

    assert listed.status_code == 200, listed.text
    entry = next(t for t in listed.json() if t["id"] == created["id"])
    assert entry == {k: v for k, v in created.items() if k != "api_key"}
    assert "ohk_" not in listed.text


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_credentials"),
        (bearer("not-the-platform-admin-token"), "invalid_token"),
        (bearer("platform-admin-token-for-test"), "invalid_token"),
    ],
    ids=["no-token", "wrong-token", "truncated-token"],
)
async def test_platform_admin_endpoints_refuse_a_missing_or_wrong_token(
    client: AsyncClient, headers: dict[str, str], code: str
) -> None:
    body = new_tenant_body()

    assert_error(await client.post("/v1/admin/tenants", json=body, headers=headers), 401, code)
    assert_error(await client.get("/v1/admin/tenants", headers=headers), 401, code)


async def test_a_tenant_owner_key_is_not_a_platform_admin_token(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    assert_error(
        await client.get("/v1/admin/tenants", headers=tenant_a.headers), 401, "invalid_token"
    )
    assert_error(
        await client.post("/v1/admin/tenants", json=new_tenant_body(), headers=tenant_a.headers),
        401,
        "invalid_token",
    )


async def test_duplicate_owner_email_is_409_email_taken_and_creates_nothing(
    client: AsyncClient, admin_headers: dict[str, str], tenant_a: TenantHandle
) -> None:
    name = f"Duplicate {secrets.token_hex(4)}"

    exact = await client.post(
        "/v1/admin/tenants",
        json=new_tenant_body(name=name, owner_email=tenant_a.email),
        headers=admin_headers,
    )
    other_case = await client.post(
        "/v1/admin/tenants",
        json=new_tenant_body(name=name, owner_email=tenant_a.email.upper()),
        headers=admin_headers,
    )

    assert_error(exact, 409, "email_taken")
    assert_error(other_case, 409, "email_taken")
    listed = (await client.get("/v1/admin/tenants", headers=admin_headers)).json()
    assert name not in {t["name"] for t in listed}


async def test_an_owner_email_used_once_can_log_in_to_its_own_tenant_only(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = new_tenant_body()
    first = await client.post("/v1/admin/tenants", json=body, headers=admin_headers)
    again: dict[str, Any] = new_tenant_body(owner_email=body["owner_email"])
    assert first.status_code == 201, first.text

    assert_error(
        await client.post("/v1/admin/tenants", json=again, headers=admin_headers),
        409,
        "email_taken",
    )
    login = await client.post(
        "/v1/auth/token", json={"email": body["owner_email"], "password": body["password"]}
    )
    token = login.json()["access_token"]
    me = await client.get("/v1/auth/me", headers=bearer(token))
    assert me.json()["tenant_id"] == first.json()["id"]
