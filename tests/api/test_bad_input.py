"""Bad input on any endpoint gets a 4xx in the API.md error envelope: never a 500 or a traceback.

422s name the offending field in ``details.fields[*].loc`` (``body.name``, ``query.limit``, …).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from opshub.config import Settings
from opshub.schemas import NO_NUL_PATTERN
from tests.conftest import TenantHandle

RESOURCES = ("clients", "leads", "campaigns", "reports")
NAME_FIELD = {"clients": "name", "leads": "name", "campaigns": "name", "reports": "title"}
NOTE_FIELD = {"clients": "notes", "leads": "notes", "campaigns": "objective", "reports": "author"}
ONE_MB = "x" * (1024 * 1024 + 1)
PASSWORD = "Tr0ub4dor&3-never-echo-me"


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Like the shared client, but an unhandled error comes back as the 500 a caller would get
    instead of being raised inside the test, so a failing case shows its status and body."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://opshub") as c:
        yield c


@pytest.fixture(scope="module")
async def tenant(app: FastAPI, settings: Settings) -> TenantHandle:
    """One tenant for the whole module (these requests are all refused and change nothing),
    made through the platform admin API."""
    assert settings.admin_token is not None
    email = f"bad-input-{uuid.uuid4().hex[:10]}@example.com"
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub") as c:
        response = await c.post(
            "/v1/admin/tenants",
            json={"name": "Bad Input", "owner_email": email, "password": PASSWORD},
            headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    return TenantHandle(uuid.UUID(body["id"]), body["name"], email, PASSWORD, body["api_key"])


@pytest.fixture
def admin_headers(settings: Settings) -> dict[str, str]:
    assert settings.admin_token is not None
    return {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}


def assert_envelope(response: Response, status: int) -> dict[str, Any]:
    """Exactly ``status`` (the one docs/api.md gives) with the error envelope and nothing that
    leaks internals."""
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    return error


def assert_invalid(response: Response, *locs: str) -> dict[str, Any]:
    """A 422 invalid_request whose details.fields name every one of ``locs``."""
    error = assert_envelope(response, 422)
    assert error["code"] == "invalid_request", error
    fields = error["details"]["fields"]
    assert fields and all(isinstance(f["message"], str) and f["message"] for f in fields), error
    named = [f["loc"] for f in fields]
    for loc in locs:
        assert loc in named, (loc, named)
    return error


# --- Every endpoint that takes a JSON body ----------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    id: str
    method: str
    path: str
    auth: str  # "tenant", "admin" or "none"
    valid: Callable[[TenantHandle], dict[str, Any]]
    required: tuple[str, ...]
    text_field: str

    async def send(
        self,
        client: AsyncClient,
        tenant: TenantHandle,
        admin_headers: dict[str, str],
        **kwargs: Any,
    ) -> Response:
        headers = {"tenant": tenant.headers, "admin": admin_headers, "none": {}}[self.auth]
        headers = {**headers, **kwargs.pop("headers", {})}
        return await client.request(self.method, self.path, headers=headers, **kwargs)


def _data_endpoints() -> list[Endpoint]:
    endpoints = []
    for resource in RESOURCES:
        name = NAME_FIELD[resource]
        required = (name, "channel") if resource == "campaigns" else (name,)

        def valid_create(_: TenantHandle, resource: str = resource) -> dict[str, Any]:
            body: dict[str, Any] = {NAME_FIELD[resource]: "Valid"}
            if resource == "campaigns":
                body["channel"] = "email"
            return body

        def valid_patch(_: TenantHandle, resource: str = resource) -> dict[str, Any]:
            return {NOTE_FIELD[resource]: "valid"}

        endpoints += [
            Endpoint(
                f"create-{resource}",
                "POST",
                f"/v1/data/{resource}",
                "tenant",
                valid_create,
                required,
                name,
            ),
            Endpoint(
                f"patch-{resource}",
                "PATCH",
                f"/v1/data/{resource}/{uuid.uuid4()}",
                "tenant",
                valid_patch,
                (),
                NOTE_FIELD[resource],
            ),
        ]
    return endpoints


ENDPOINTS = [
    Endpoint(
        "login",
        "POST",
        "/v1/auth/token",
        "none",
        lambda t: {"email": t.email, "password": t.password},
        ("email", "password"),
        "email",
    ),
    Endpoint(
        "create-key",
        "POST",
        "/v1/keys",
        "tenant",
        lambda _: {"name": "valid", "role": "viewer"},
        ("name",),
        "name",
    ),
    Endpoint(
        "create-tenant",
        "POST",
        "/v1/admin/tenants",
        "admin",
        lambda _: {
            "name": "Valid",
            "owner_email": f"valid-{secrets.token_hex(6)}@example.com",
            "password": "long enough password",
        },
        ("name", "owner_email", "password"),
        "name",
    ),
    *_data_endpoints(),
]
WITH_REQUIRED = [e for e in ENDPOINTS if e.required]


def endpoints(items: list[Endpoint]) -> Any:
    return pytest.mark.parametrize("endpoint", items, ids=[e.id for e in items])


@endpoints(ENDPOINTS)
async def test_malformed_json_body_is_422(
    client: AsyncClient, tenant: TenantHandle, admin_headers: dict[str, str], endpoint: Endpoint
) -> None:
    response = await endpoint.send(
        client,
        tenant,
        admin_headers,
        content=b'{"name": "unterminated',
        headers={"Content-Type": "application/json"},
    )

    error = assert_invalid(response)
    assert all(f["loc"].startswith("body") for f in error["details"]["fields"])


@endpoints(ENDPOINTS)
async def test_a_body_that_is_not_an_object_is_422(
    client: AsyncClient, tenant: TenantHandle, admin_headers: dict[str, str], endpoint: Endpoint
) -> None:
    response = await endpoint.send(client, tenant, admin_headers, json=[endpoint.valid(tenant)])

    assert_invalid(response, "body")


@endpoints(ENDPOINTS)
async def test_a_field_of_the_wrong_type_is_422_naming_it(
    client: AsyncClient, tenant: TenantHandle, admin_headers: dict[str, str], endpoint: Endpoint
) -> None:
    body = {**endpoint.valid(tenant), endpoint.text_field: {"not": "a string"}}

    response = await endpoint.send(client, tenant, admin_headers, json=body)

    assert_invalid(response, f"body.{endpoint.text_field}")


@endpoints(WITH_REQUIRED)
async def test_missing_required_fields_are_422_naming_each(
    client: AsyncClient, tenant: TenantHandle, admin_headers: dict[str, str], endpoint: Endpoint
) -> None:
    response = await endpoint.send(client, tenant, admin_headers, json={})

    assert_invalid(response, *(f"body.{name}" for name in endpoint.required))


@endpoints(ENDPOINTS)
async def test_an_unknown_field_is_422_naming_it(
    client: AsyncClient, tenant: TenantHandle, admin_headers: dict[str, str], endpoint: Endpoint
) -> None:
    # A misspelt optional field (say "plna" for "plan") must not be dropped silently.
    body = {**endpoint.valid(tenant), "unexpected_field": "x"}

    response = await endpoint.send(client, tenant, admin_headers, json=body)

    assert_invalid(response, "body.unexpected_field")


@endpoints(ENDPOINTS)
async def test_a_one_megabyte_string_is_422_naming_the_field(
    client: AsyncClient, tenant: TenantHandle, admin_headers: dict[str, str], endpoint: Endpoint
) -> None:
    body = {**endpoint.valid(tenant), endpoint.text_field: ONE_MB}

    response = await endpoint.send(client, tenant, admin_headers, json=body)

    assert_invalid(response, f"body.{endpoint.text_field}")
    assert len(response.content) < 10_000


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_report_body_over_the_limit_is_422(
    client: AsyncClient, tenant: TenantHandle, method: str
) -> None:
    url = "/v1/data/reports" if method == "POST" else f"/v1/data/reports/{uuid.uuid4()}"

    response = await client.request(
        method, url, json={"title": "Big", "body": ONE_MB}, headers=tenant.headers
    )

    assert_invalid(response, "body.body")


@pytest.mark.parametrize(
    ("method", "resource", "field"),
    [
        ("POST", "leads", "email"),
        ("PATCH", "leads", "email"),
        ("POST", "clients", "email"),
    ],
)
@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com", "a@b@c.com", "@example.com"])
async def test_an_invalid_email_is_422(
    client: AsyncClient, tenant: TenantHandle, method: str, resource: str, field: str, email: str
) -> None:
    url = f"/v1/data/{resource}" if method == "POST" else f"/v1/data/{resource}/{uuid.uuid4()}"

    response = await client.request(
        method, url, json={"name": "Valid", field: email}, headers=tenant.headers
    )

    assert_invalid(response, f"body.{field}")


async def test_an_invalid_owner_email_for_a_new_tenant_is_422(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/admin/tenants",
        json={"name": "X", "owner_email": "nope", "password": "long enough password"},
        headers=admin_headers,
    )

    assert_invalid(response, "body.owner_email")


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/data/leads", {"name": "X", "status": "maybe"}, "body.status"),
        ("/v1/data/leads", {"name": "X", "score": 101}, "body.score"),
        ("/v1/data/leads", {"name": "X", "score": "high"}, "body.score"),
        ("/v1/data/leads", {"name": "X", "client_id": "client-1"}, "body.client_id"),
        (
            "/v1/data/leads",
            {"name": "X", "next_follow_up_at": "next tuesday"},
            "body.next_follow_up_at",
        ),
        ("/v1/data/leads", {"name": "   "}, "body.name"),
        ("/v1/data/campaigns", {"name": "X", "channel": "tv"}, "body.channel"),
        ("/v1/data/campaigns", {"name": "X", "channel": "seo", "currency": "eur"}, "body.currency"),
        (
            "/v1/data/campaigns",
            {"name": "X", "channel": "seo", "daily_budget": -1},
            "body.daily_budget",
        ),
        (
            "/v1/data/campaigns",
            {"name": "X", "channel": "seo", "daily_budget": "NaN"},
            "body.daily_budget",
        ),
        (
            "/v1/data/campaigns",
            {"name": "X", "channel": "seo", "daily_budget": "1.234"},
            "body.daily_budget",
        ),
        (
            "/v1/data/campaigns",
            {"name": "X", "channel": "seo", "start_date": "2030-02-30"},
            "body.start_date",
        ),
        (
            "/v1/data/clients",
            {"name": "X", "attributes": ["not", "an", "object"]},
            "body.attributes",
        ),
        ("/v1/data/reports", {"title": "X", "kind": ""}, "body.kind"),
        ("/v1/data/reports", {"title": "X", "data": "text"}, "body.data"),
        ("/v1/keys", {"name": "X", "role": "superuser"}, "body.role"),
    ],
)
async def test_an_out_of_range_or_malformed_value_is_422_naming_the_field(
    client: AsyncClient, tenant: TenantHandle, path: str, body: dict[str, Any], loc: str
) -> None:
    assert_invalid(await client.post(path, json=body, headers=tenant.headers), loc)


# --- Path and query parameters ----------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
@pytest.mark.parametrize(
    ("method", "path", "loc"),
    [
        *[("GET", f"/v1/data/{r}/{{id}}", "path.item_id") for r in RESOURCES],
        *[("PATCH", f"/v1/data/{r}/{{id}}", "path.item_id") for r in RESOURCES],
        *[("DELETE", f"/v1/data/{r}/{{id}}", "path.item_id") for r in RESOURCES],
        ("DELETE", "/v1/keys/{id}", "path.key_id"),
    ],
)
async def test_a_non_uuid_path_id_is_422(
    client: AsyncClient, tenant: TenantHandle, method: str, path: str, loc: str, bad_id: str
) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}

    response = await client.request(
        method, path.format(id=bad_id), headers=tenant.headers, **kwargs
    )

    assert_invalid(response, loc)


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD_CURSORS = {
    "not-base64": "!!!not base64!!!",
    "not-json": base64.urlsafe_b64encode(b"hello").decode(),
    "wrong-shape": _b64({"a": 1}),
    "not-a-date": _b64(["yesterday", str(uuid.uuid4())]),
    "not-an-id": _b64(["2030-01-01T00:00:00+00:00", "row-7"]),
    "date-before-year-1-in-utc": _b64(["0001-01-01T00:00:00+14:00", str(uuid.uuid4())]),
    "date-after-year-9999-in-utc": _b64(["9999-12-31T23:59:59-14:00", str(uuid.uuid4())]),
    "too-long": "A" * 501,
}


@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
@pytest.mark.parametrize("resource", RESOURCES)
async def test_an_invalid_cursor_is_422(
    client: AsyncClient, tenant: TenantHandle, resource: str, cursor: str
) -> None:
    response = await client.get(
        f"/v1/data/{resource}", params={"cursor": cursor}, headers=tenant.headers
    )

    assert_invalid(response, "query.cursor")


@pytest.mark.parametrize("limit", ["0", "-1", "201", "1000", "ten", "1.5", ""])
@pytest.mark.parametrize("resource", RESOURCES)
async def test_a_limit_outside_1_to_200_is_422(
    client: AsyncClient, tenant: TenantHandle, resource: str, limit: str
) -> None:
    response = await client.get(
        f"/v1/data/{resource}", params={"limit": limit}, headers=tenant.headers
    )

    assert_invalid(response, "query.limit")


@pytest.mark.parametrize(
    ("resource", "param"),
    [
        ("clients", "sort"),
        ("leads", "page"),
        ("campaigns", "offset"),
        ("reports", "status"),
        ("clients", "status"),
        ("leads", "industry"),
    ],
)
async def test_an_unknown_query_parameter_is_422_naming_it(
    client: AsyncClient, tenant: TenantHandle, resource: str, param: str
) -> None:
    response = await client.get(f"/v1/data/{resource}", params={param: "x"}, headers=tenant.headers)

    assert_invalid(response, f"query.{param}")


@pytest.mark.parametrize(
    ("resource", "params", "loc"),
    [
        ("leads", {"status": "maybe"}, "query.status"),
        ("leads", {"client_id": "client-1"}, "query.client_id"),
        ("campaigns", {"channel": "tv"}, "query.channel"),
        ("campaigns", {"status": "won"}, "query.status"),
        ("campaigns", {"client_id": "1"}, "query.client_id"),
        ("clients", {"q": "x" * 201}, "query.q"),
    ],
)
async def test_a_filter_value_of_the_wrong_kind_is_422(
    client: AsyncClient, tenant: TenantHandle, resource: str, params: dict[str, str], loc: str
) -> None:
    response = await client.get(f"/v1/data/{resource}", params=params, headers=tenant.headers)

    assert_invalid(response, loc)


# --- Routes and methods that do not exist -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("GET", "/v1/data/widgets"),
        ("POST", "/v1/data/widgets/import"),
        ("GET", "/v2/data/leads"),
        ("GET", "/v1/data/leads/import/extra"),
        ("GET", "/"),
    ],
)
async def test_an_unknown_route_is_404_not_found(
    client: AsyncClient, tenant: TenantHandle, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=tenant.headers)

    assert assert_envelope(response, 404)["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/data/leads"),
        ("DELETE", "/v1/data/clients"),
        # Fixed ids: each pytest-xdist process must collect the same test names.
        ("PUT", "/v1/data/campaigns/5f0c1d3e-2b4a-4c6d-8e9f-0a1b2c3d4e5f"),
        ("POST", "/v1/data/reports/5f0c1d3e-2b4a-4c6d-8e9f-0a1b2c3d4e5f"),
        ("PUT", "/v1/data/leads/import"),
        ("GET", "/v1/auth/token"),
        ("POST", "/v1/auth/me"),
        ("PATCH", "/v1/keys"),
        ("DELETE", "/v1/admin/tenants"),
    ],
)
async def test_a_wrong_method_is_405_method_not_allowed(
    client: AsyncClient, tenant: TenantHandle, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=tenant.headers)

    assert assert_envelope(response, 405)["code"] == "method_not_allowed"


# --- Import -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"items": [', "application/json"),
        (b"null", "application/json"),
        (b"42", "application/json"),
        (b'{"items": "all of them"}', "application/json"),
        (b'{"rows": [{"name": "x"}]}', "application/json"),
        (b'[{"name": "x"}, "y"]', "application/json"),
        (b"name=x", "application/x-www-form-urlencoded"),
        (b"<leads/>", "application/xml"),
        ("name\nJos\xe9\n".encode("latin-1"), "text/csv"),
        (b"name,email\nAnn,ann@example.com,one cell too many\n", "text/csv"),
        (b"name,name\nAnn,Bob\n", "text/csv"),
        (b",\n,\n", "text/csv"),
    ],
    ids=[
        "truncated-json",
        "json-null",
        "json-number",
        "items-not-a-list",
        "no-items-key",
        "item-not-an-object",
        "form-encoded",
        "xml",
        "csv-not-utf8",
        "csv-row-longer-than-header",
        "csv-duplicate-column",
        "csv-empty-header",
    ],
)
async def test_an_unreadable_import_is_422_and_imports_nothing(
    client: AsyncClient, tenant: TenantHandle, content: bytes, content_type: str
) -> None:
    before = (await client.get("/v1/data/leads", headers=tenant.headers)).json()["items"]

    response = await client.post(
        "/v1/data/leads/import",
        content=content,
        headers={**tenant.headers, "Content-Type": content_type},
    )

    assert assert_envelope(response, 422)["code"] == "invalid_request"
    after = (await client.get("/v1/data/leads", headers=tenant.headers)).json()["items"]
    assert after == before


FIFTY_MB = 50 * 1024 * 1024


async def test_a_50_mb_body_is_413_before_it_is_read(
    client: AsyncClient, tenant: TenantHandle, settings: Settings
) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"x" * (1024 * 1024)
        while sent < FIFTY_MB:
            sent += len(chunk)
            yield chunk

    response = await client.post(
        "/v1/data/leads/import",
        content=b"x" * FIFTY_MB,
        headers={**tenant.headers, "Content-Type": "text/csv"},
    )
    assert assert_envelope(response, 413)["code"] == "payload_too_large"

    # Sent in chunks, without a length: refused once past the cap, the rest never read.
    response = await client.post(
        "/v1/data/leads/import",
        content=body(),
        headers={**tenant.headers, "Content-Type": "text/csv"},
    )
    assert assert_envelope(response, 413)["code"] == "payload_too_large"
    assert sent <= settings.max_request_body_bytes + 1024 * 1024


# --- Text PostgreSQL can't store, dates it can't hold -----------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("POST", "/v1/data/leads", {"name": "Nul\u0000byte"}, "body.name"),
        ("PATCH", "/v1/data/clients/{id}", {"notes": "a\u0000b"}, "body.notes"),
        (
            "POST",
            "/v1/data/clients",
            {"name": "C", "attributes": {"k": "\u0000"}},
            "body.attributes",
        ),
        ("POST", "/v1/data/reports", {"title": "R", "body": "x\u0000"}, "body.body"),
    ],
    ids=["create-text", "patch-text", "json-object", "report-body"],
)
async def test_a_nul_character_in_text_is_422_not_500(
    client: AsyncClient,
    tenant: TenantHandle,
    method: str,
    path: str,
    body: dict[str, Any],
    loc: str,
) -> None:
    existing = await client.post(
        "/v1/data/clients", json={"name": "Target"}, headers=tenant.headers
    )
    url = path.format(id=existing.json()["id"])

    response = await client.request(method, url, json=body, headers=tenant.headers)

    assert_invalid(response, loc)


async def test_a_nul_character_in_search_is_422_not_500(
    client: AsyncClient, tenant: TenantHandle
) -> None:
    response = await client.get("/v1/data/leads", params={"q": "a\u0000b"}, headers=tenant.headers)

    assert_invalid(response, "query.q")


async def test_a_nul_character_in_an_imported_row_is_422_not_500(
    client: AsyncClient, tenant: TenantHandle
) -> None:
    response = await client.post(
        "/v1/data/leads/import", json=[{"name": "ok"}, {"name": "a\u0000b"}], headers=tenant.headers
    )

    assert assert_envelope(response, 422)["code"] == "invalid_request"


async def test_a_nul_character_in_a_login_email_is_422_not_500(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/token", json={"email": "a\u0000b@example.com", "password": PASSWORD}
    )

    assert assert_envelope(response, 422)["code"] == "invalid_request"
    assert PASSWORD not in response.text


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00"], ids=["year-0", "year-10000"]
)
async def test_a_datetime_outside_what_the_database_holds_is_422_not_500(
    client: AsyncClient, tenant: TenantHandle, when: str
) -> None:
    # Both are valid ISO 8601, but in UTC they fall outside years 1..9999.
    response = await client.post(
        "/v1/data/leads", json={"name": "X", "next_follow_up_at": when}, headers=tenant.headers
    )

    assert_invalid(response, "body.next_follow_up_at")


@pytest.mark.parametrize("path", ["/v1/admin/tenants", "/v1/data/leads"])
async def test_a_non_ascii_bearer_token_is_401_not_500(client: AsyncClient, path: str) -> None:
    # HTTP header values are Latin-1; a caller can send any of those bytes.
    response = await client.get(path, headers={"Authorization": b"Bearer t\xf6ken"})

    assert_envelope(response, 401)


# --- Secrets are never echoed -----------------------------------------------------------------


LOGIN_BODIES: dict[str, tuple[bytes, str]] = {
    "malformed-json": (
        f'{{"email": "a@example.com", "password": "{PASSWORD}",,}}'.encode(),
        "application/json",
    ),
    "email-wrong-type": (
        json.dumps({"email": 42, "password": PASSWORD}).encode(),
        "application/json",
    ),
    "password-wrong-type": (
        json.dumps({"email": "a@example.com", "password": [PASSWORD]}).encode(),
        "application/json",
    ),
    "password-too-long": (
        json.dumps({"email": "a@example.com", "password": PASSWORD * 100}).encode(),
        "application/json",
    ),
    "email-too-long": (
        json.dumps({"email": "a" * 400 + "@example.com", "password": PASSWORD}).encode(),
        "application/json",
    ),
    "missing-email": (json.dumps({"password": PASSWORD}).encode(), "application/json"),
    "password-only-body": (json.dumps(PASSWORD).encode(), "application/json"),
    "form-encoded": (
        f"email=a@example.com&password={PASSWORD}".encode(),
        "application/x-www-form-urlencoded",
    ),
    "wrong-password": (
        json.dumps({"email": "a@example.com", "password": PASSWORD}).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("case", LOGIN_BODIES.keys())
async def test_a_password_in_a_bad_login_request_is_never_echoed(
    client: AsyncClient, case: str
) -> None:
    content, content_type = LOGIN_BODIES[case]

    response = await client.post(
        "/v1/auth/token", content=content, headers={"Content-Type": content_type}
    )

    if case == "wrong-password":  # the only well-formed one: it gets as far as the check
        assert assert_envelope(response, 401)["code"] == "invalid_credentials"
    else:
        assert assert_envelope(response, 422)["code"] == "invalid_request"
    assert PASSWORD not in response.text
    assert PASSWORD not in str(response.headers)


async def test_a_password_in_a_bad_tenant_creation_is_never_echoed(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/admin/tenants",
        json={"name": "", "owner_email": "not-an-email", "password": PASSWORD, "plan": 7},
        headers=admin_headers,
    )

    assert_invalid(response, "body.name", "body.owner_email", "body.plan")
    assert PASSWORD not in response.text


def test_the_openapi_says_request_text_may_not_hold_nul(app: FastAPI) -> None:
    """Every text field of every JSON request body carries a pattern refusing NUL, as the
    validator does: schema-valid input is never refused unannounced."""
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    bodies = {
        content["schema"]["$ref"].rpartition("/")[2]
        for path in spec["paths"].values()
        for operation in path.values()
        for content in operation.get("requestBody", {}).get("content", {}).values()
        if "$ref" in content.get("schema", {})
    }
    unmarked = []
    for name in sorted(bodies):
        for field, schema in schemas[name].get("properties", {}).items():
            for option in schema.get("anyOf", [schema]):
                if option.get("type") != "string" or {"format", "enum", "const"} & set(option):
                    continue
                if "pattern" not in option:  # a field's own pattern is stricter still
                    unmarked.append(f"{name}.{field}")
    assert bodies and unmarked == []
    assert re.search(NO_NUL_PATTERN, "plain text") and not re.search(NO_NUL_PATTERN, "a\x00b")
