"""Tenant business data: CRUD, pagination, filters, tenant isolation and bulk import."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from tests.conftest import TenantHandle

RESOURCES = ("clients", "leads", "campaigns", "reports")

# resource -> (a full create body, a patch that changes something)
SAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "clients": (
        {
            "name": "Northwind Traders",
            "industry": "retail",
            "website": "https://northwind.example.com",
            "email": "hello@northwind.example.com",
            "phone": "+49 30 1234567",
            "notes": "met at the fair",
            "attributes": {"tier": "gold", "seats": 12},
        },
        {"industry": "wholesale", "attributes": {"tier": "silver"}},
    ),
    "leads": (
        {
            "name": "Jane Doe",
            "email": "jane@example.com",
            "company": "Doe & Daughters",
            "source": "web",
            "status": "contacted",
            "score": 40,
            "notes": "asked for pricing",
            "next_follow_up_at": "2030-01-15T09:30:00Z",
        },
        {"status": "qualified", "score": 85},
    ),
    "campaigns": (
        {
            "name": "Spring sale",
            "channel": "google_ads",
            "status": "active",
            "objective": "sell more tents",
            "daily_budget": "25.50",
            "currency": "EUR",
            "start_date": "2030-03-01",
            "end_date": "2030-03-31",
            "external_id": "gads-123",
        },
        {"status": "paused", "daily_budget": "10.00"},
    ),
    "reports": (
        {
            "title": "Weekly numbers",
            "kind": "weekly",
            "period_start": "2030-01-01",
            "period_end": "2030-01-07",
            "body": "Revenue went up.",
            "data": {"revenue": 1200, "orders": [1, 2, 3]},
            "author": "analytics crew",
        },
        {"body": "Revenue went up a lot.", "data": {"revenue": 2400}},
    ),
}
NAME_FIELD = {"clients": "name", "leads": "name", "campaigns": "name", "reports": "title"}
# A nullable free-text field of each resource.
NOTE_FIELD = {"clients": "notes", "leads": "notes", "campaigns": "objective", "reports": "author"}
# Columns that may not be null, so a PATCH setting them to null must be refused.
NOT_NULL = [
    ("clients", "name"),
    ("clients", "attributes"),
    ("leads", "name"),
    ("leads", "status"),
    ("campaigns", "name"),
    ("campaigns", "channel"),
    ("campaigns", "status"),
    ("reports", "title"),
    ("reports", "kind"),
    ("reports", "body"),
    ("reports", "data"),
]


def minimal(resource: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = {NAME_FIELD[resource]: name}
    if resource == "campaigns":
        body["channel"] = "email"
    return body


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, response.text
    return error


def field_locs(error: dict[str, Any]) -> list[str]:
    return [field["loc"] for field in error.get("details", {}).get("fields", [])]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row with money as Decimal and instants as datetimes, so "25.5" equals "25.50" and
    "…Z" equals "…+00:00"."""
    out = dict(row)
    if out.get("daily_budget") is not None:
        out["daily_budget"] = Decimal(out["daily_budget"])
    if out.get("next_follow_up_at") is not None:
        out["next_follow_up_at"] = instant(out["next_follow_up_at"])
    return out


async def create(
    client: AsyncClient, tenant: TenantHandle, resource: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"/v1/data/{resource}", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    row: dict[str, Any] = response.json()
    return row


async def list_all(
    client: AsyncClient, tenant: TenantHandle, resource: str, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/v1/data/{resource}", params=query, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def ids_of(
    client: AsyncClient, tenant: TenantHandle, resource: str, **params: Any
) -> set[str]:
    return {row["id"] for row in await list_all(client, tenant, resource, **params)}


async def import_(
    client: AsyncClient, tenant: TenantHandle, resource: str, **kwargs: Any
) -> Response:
    return await client.post(f"/v1/data/{resource}/import", headers=tenant.headers, **kwargs)


async def import_csv(
    client: AsyncClient, tenant: TenantHandle, resource: str, csv_text: str
) -> Response:
    return await client.post(
        f"/v1/data/{resource}/import",
        content=csv_text.encode(),
        headers={**tenant.headers, "Content-Type": "text/csv"},
    )


# --- CRUD -----------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
async def test_create_get_patch_delete_round_trip(
    client: AsyncClient, tenant_a: TenantHandle, resource: str
) -> None:
    body, patch = SAMPLES[resource]
    base = f"/v1/data/{resource}"
    h = tenant_a.headers

    created = await create(client, tenant_a, resource, body)
    assert comparable({k: created[k] for k in body}) == comparable(body)
    assert uuid.UUID(created["id"])
    assert created["updated_at"] == created["created_at"]

    fetched = await client.get(f"{base}/{created['id']}", headers=h)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == created

    patched = await client.patch(f"{base}/{created['id']}", json=patch, headers=h)
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert comparable({k: after[k] for k in patch}) == comparable(patch)
    unchanged = set(created) - set(patch) - {"updated_at"}
    assert {k: after[k] for k in unchanged} == {k: created[k] for k in unchanged}
    assert instant(after["updated_at"]) > instant(created["updated_at"])
    assert (await client.get(f"{base}/{created['id']}", headers=h)).json() == after

    deleted = await client.delete(f"{base}/{created['id']}", headers=h)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_error(await client.get(f"{base}/{created['id']}", headers=h), 404, "not_found")
    assert_error(await client.delete(f"{base}/{created['id']}", headers=h), 404, "not_found")
    assert_error(
        await client.patch(f"{base}/{created['id']}", json=patch, headers=h), 404, "not_found"
    )
    assert created["id"] not in await ids_of(client, tenant_a, resource)


@pytest.mark.parametrize("resource", RESOURCES)
async def test_create_fills_in_defaults(
    client: AsyncClient, tenant_a: TenantHandle, resource: str
) -> None:
    created = await create(client, tenant_a, resource, minimal(resource, "Bare"))

    defaults = {
        "clients": {"attributes": {}, "industry": None},
        "leads": {"status": "new", "client_id": None, "score": None},
        "campaigns": {"status": "draft", "daily_budget": None, "client_id": None},
        "reports": {"kind": "general", "body": "", "data": {}},
    }[resource]
    assert {k: created[k] for k in defaults} == defaults


async def test_a_daily_budget_is_answered_as_the_decimal_string_the_openapi_documents(
    client: AsyncClient, tenant_a: TenantHandle, app: FastAPI
) -> None:
    created = await create(
        client,
        tenant_a,
        "campaigns",
        {"name": "Budgeted", "channel": "meta_ads", "daily_budget": 7},
    )
    [listed] = [
        row for row in await list_all(client, tenant_a, "campaigns") if row["id"] == created["id"]
    ]

    assert created["daily_budget"] == listed["daily_budget"] == "7.00"
    schema = app.openapi()["components"]["schemas"]["CampaignRead"]["properties"]["daily_budget"]
    assert "string" in {option["type"] for option in schema["anyOf"]}


@pytest.mark.parametrize(("resource", "field"), NOT_NULL)
async def test_patch_setting_a_required_field_to_null_is_422_and_changes_nothing(
    client: AsyncClient, tenant_a: TenantHandle, resource: str, field: str
) -> None:
    created = await create(client, tenant_a, resource, SAMPLES[resource][0])
    url = f"/v1/data/{resource}/{created['id']}"

    # The valid half of the same PATCH must not be applied either.
    patch = {field: None, NOTE_FIELD[resource]: "changed"}
    response = await client.patch(url, json=patch, headers=tenant_a.headers)

    error = assert_error(response, 422, "invalid_request")
    assert f"body.{field}" in field_locs(error)
    assert (await client.get(url, headers=tenant_a.headers)).json() == created


@pytest.mark.parametrize(
    ("resource", "stored", "patch"),
    [
        ("campaigns", {"start_date": "2030-03-01"}, {"end_date": "2030-02-01"}),
        ("campaigns", {"end_date": "2030-03-31"}, {"start_date": "2030-04-15"}),
        ("reports", {"period_start": "2030-01-08"}, {"period_end": "2030-01-01"}),
    ],
    ids=["campaign-end-before-stored-start", "campaign-start-after-stored-end", "report-period"],
)
async def test_patch_cannot_make_a_date_range_end_before_it_starts(
    client: AsyncClient,
    tenant_a: TenantHandle,
    resource: str,
    stored: dict[str, str],
    patch: dict[str, str],
) -> None:
    # Creating such a range is refused (422); changing one end of a stored range must be too.
    created = await create(client, tenant_a, resource, {**minimal(resource, "Dates"), **stored})
    url = f"/v1/data/{resource}/{created['id']}"

    response = await client.patch(url, json=patch, headers=tenant_a.headers)

    assert_error(response, 422, "invalid_request")
    assert (await client.get(url, headers=tenant_a.headers)).json() == created


@pytest.mark.parametrize(
    ("resource", "body"),
    [
        ("campaigns", {"start_date": "2030-03-01", "end_date": "2030-02-01"}),
        ("reports", {"period_start": "2030-01-08", "period_end": "2030-01-01"}),
    ],
)
async def test_create_refuses_a_range_that_ends_before_it_starts(
    client: AsyncClient, tenant_a: TenantHandle, resource: str, body: dict[str, str]
) -> None:
    response = await client.post(
        f"/v1/data/{resource}", json={**minimal(resource, "Bad"), **body}, headers=tenant_a.headers
    )

    assert_error(response, 422, "invalid_request")
    assert await ids_of(client, tenant_a, resource) == set()


# --- Listing ----------------------------------------------------------------------------------


async def walk(
    client: AsyncClient, tenant: TenantHandle, resource: str, limit: int
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"/v1/data/{resource}", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 10, "the cursor never ends"


async def test_pagination_walks_120_rows_newest_first_without_gaps_or_duplicates(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    names = [f"lead-{i:03d}" for i in range(120)]
    for name in names:
        await create(client, tenant_a, "leads", {"name": name})

    pages = await walk(client, tenant_a, "leads", limit=50)

    assert [len(page) for page in pages] == [50, 50, 20]
    seen = [row["name"] for page in pages for row in page]
    assert seen == list(reversed(names))
    created_at = [instant(row["created_at"]) for page in pages for row in page]
    assert created_at == sorted(created_at, reverse=True)


async def test_pagination_is_exact_when_rows_share_a_timestamp(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    # One import is one transaction: every row gets the same created_at, so the id breaks ties.
    imported = await import_(
        client, tenant_a, "leads", json={"items": [{"name": f"bulk-{i}"} for i in range(120)]}
    )
    assert imported.status_code == 201, imported.text

    pages = await walk(client, tenant_a, "leads", limit=50)

    assert [len(page) for page in pages] == [50, 50, 20]
    ids = [row["id"] for page in pages for row in page]
    assert len(set(ids)) == 120
    assert set(ids) == set(imported.json()["ids"])


async def test_a_page_that_ends_exactly_at_the_last_row_has_no_next_cursor(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    for i in range(4):
        await create(client, tenant_a, "reports", {"title": f"r{i}"})

    pages = await walk(client, tenant_a, "reports", limit=2)

    assert [len(page) for page in pages] == [2, 2]


async def test_lead_filters_narrow_the_list_and_combine(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    acme = await create(client, tenant_a, "clients", {"name": "Acme"})
    l1 = await create(
        client,
        tenant_a,
        "leads",
        {"name": "L1", "status": "new", "source": "web", "client_id": acme["id"]},
    )
    l2 = await create(
        client, tenant_a, "leads", {"name": "L2", "status": "won", "source": "referral"}
    )
    l3 = await create(client, tenant_a, "leads", {"name": "L3", "status": "won", "source": "web"})

    assert await ids_of(client, tenant_a, "leads", status="won") == {l2["id"], l3["id"]}
    assert await ids_of(client, tenant_a, "leads", source="web") == {l1["id"], l3["id"]}
    assert await ids_of(client, tenant_a, "leads", status="won", source="web") == {l3["id"]}
    assert await ids_of(client, tenant_a, "leads", client_id=acme["id"]) == {l1["id"]}
    assert await ids_of(client, tenant_a, "leads", status="lost") == set()


async def test_campaign_client_and_report_filters(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    retail = await create(client, tenant_a, "clients", {"name": "Shop", "industry": "retail"})
    await create(client, tenant_a, "clients", {"name": "SaaS Co", "industry": "software"})
    ads = await create(
        client,
        tenant_a,
        "campaigns",
        {"name": "Ads", "channel": "google_ads", "status": "active", "client_id": retail["id"]},
    )
    mail = await create(client, tenant_a, "campaigns", {"name": "Mail", "channel": "email"})
    weekly = await create(client, tenant_a, "reports", {"title": "W", "kind": "weekly"})
    await create(client, tenant_a, "reports", {"title": "M", "kind": "monthly"})

    assert await ids_of(client, tenant_a, "clients", industry="retail") == {retail["id"]}
    assert await ids_of(client, tenant_a, "campaigns", channel="email") == {mail["id"]}
    assert await ids_of(client, tenant_a, "campaigns", status="active") == {ads["id"]}
    assert await ids_of(client, tenant_a, "campaigns", status="draft") == {mail["id"]}
    assert await ids_of(client, tenant_a, "campaigns", client_id=retail["id"]) == {ads["id"]}
    assert await ids_of(client, tenant_a, "reports", kind="weekly") == {weekly["id"]}


async def test_q_searches_the_searchable_columns_case_insensitively(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    by_name = await create(client, tenant_a, "leads", {"name": "Grace Hopper"})
    by_company = await create(client, tenant_a, "leads", {"name": "X", "company": "HOPPER Labs"})
    by_email = await create(
        client, tenant_a, "leads", {"name": "Y", "email": "g.hopper@navy.example.com"}
    )
    await create(client, tenant_a, "leads", {"name": "Ada Lovelace", "notes": "hopper"})
    report = await create(
        client, tenant_a, "reports", {"title": "Q3", "body": "Churn fell sharply"}
    )

    assert await ids_of(client, tenant_a, "leads", q="hopper") == {
        by_name["id"],
        by_company["id"],
        by_email["id"],
    }
    assert await ids_of(client, tenant_a, "leads", q="hopper", limit=1) == {
        by_name["id"],
        by_company["id"],
        by_email["id"],
    }
    assert await ids_of(client, tenant_a, "reports", q="CHURN") == {report["id"]}
    assert await ids_of(client, tenant_a, "leads", q="nobody-matches-this") == set()


async def test_q_treats_percent_and_underscore_as_plain_characters(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    percent = await create(client, tenant_a, "clients", {"name": "50% Off Outlet"})
    await create(client, tenant_a, "clients", {"name": "500 Off Outlet"})
    underscore = await create(client, tenant_a, "clients", {"name": "a_b consulting"})
    await create(client, tenant_a, "clients", {"name": "axb consulting"})

    assert await ids_of(client, tenant_a, "clients", q="50%") == {percent["id"]}
    assert await ids_of(client, tenant_a, "clients", q="a_b") == {underscore["id"]}
    assert await ids_of(client, tenant_a, "clients", q="%") == {percent["id"]}


# --- Tenant isolation -------------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
async def test_another_tenants_row_is_404_on_every_verb_and_never_listed(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle, resource: str
) -> None:
    body, patch = SAMPLES[resource]
    row = await create(client, tenant_a, resource, body)
    url = f"/v1/data/{resource}/{row['id']}"
    missing = f"/v1/data/{resource}/{uuid.uuid4()}"

    for response in (
        await client.get(url, headers=tenant_b.headers),
        await client.patch(url, json=patch, headers=tenant_b.headers),
        await client.delete(url, headers=tenant_b.headers),
    ):
        assert_error(response, 404, "not_found")
    # Exactly what a row that does not exist gets: no existence oracle.
    assert (await client.get(missing, headers=tenant_b.headers)).status_code == 404

    assert row["id"] not in await ids_of(client, tenant_b, resource)
    name = body[NAME_FIELD[resource]]
    assert row["id"] not in await ids_of(client, tenant_b, resource, q=name)
    assert (await client.get(url, headers=tenant_a.headers)).json() == row


async def test_import_is_visible_to_its_own_tenant_only(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    response = await import_(client, tenant_a, "reports", json=[{"title": "Private"}])
    assert response.status_code == 201, response.text

    assert await ids_of(client, tenant_b, "reports") == set()
    assert await ids_of(client, tenant_a, "reports") == set(response.json()["ids"])


@pytest.mark.parametrize("resource", ["leads", "campaigns"])
async def test_a_client_id_of_another_tenant_is_422_on_create_patch_and_import(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle, resource: str
) -> None:
    foreign = await create(client, tenant_b, "clients", {"name": "B's client"})
    own = await create(client, tenant_a, resource, minimal(resource, "Mine"))
    body = {**minimal(resource, "Sneaky"), "client_id": foreign["id"]}

    created = await client.post(f"/v1/data/{resource}", json=body, headers=tenant_a.headers)
    error = assert_error(created, 422, "invalid_request")
    assert "body.client_id" in field_locs(error)

    url = f"/v1/data/{resource}/{own['id']}"
    patched = await client.patch(url, json={"client_id": foreign["id"]}, headers=tenant_a.headers)
    assert "body.client_id" in field_locs(assert_error(patched, 422, "invalid_request"))
    assert (await client.get(url, headers=tenant_a.headers)).json() == own

    imported = await import_(client, tenant_a, resource, json=[minimal(resource, "ok"), body])
    assert_error(imported, 422, "invalid_request")

    assert await ids_of(client, tenant_a, resource) == {own["id"]}
    # And filtering by the other tenant's client shows nothing of theirs.
    assert await ids_of(client, tenant_a, resource, client_id=foreign["id"]) == set()


async def test_a_client_id_that_does_not_exist_is_422(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/v1/data/leads",
        json={"name": "X", "client_id": str(uuid.uuid4())},
        headers=tenant_a.headers,
    )

    assert "body.client_id" in field_locs(assert_error(response, 422, "invalid_request"))


async def test_deleting_a_client_keeps_its_leads_and_unlinks_them(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    acme = await create(client, tenant_a, "clients", {"name": "Acme"})
    lead = await create(client, tenant_a, "leads", {"name": "L", "client_id": acme["id"]})

    deleted = await client.delete(f"/v1/data/clients/{acme['id']}", headers=tenant_a.headers)

    assert deleted.status_code == 204, deleted.text
    after = await client.get(f"/v1/data/leads/{lead['id']}", headers=tenant_a.headers)
    assert after.status_code == 200, after.text
    assert after.json()["client_id"] is None
    assert after.json()["name"] == "L"


# --- Import -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["items-object", "bare-array"])
async def test_json_import_of_three_rows_creates_all_three(
    client: AsyncClient, tenant_a: TenantHandle, shape: str
) -> None:
    rows = [
        {"name": "Imported A", "status": "won"},
        {"name": "Imported B", "email": "b@example.com"},
        {"name": "Imported C", "score": 7},
    ]
    payload: Any = {"items": rows} if shape == "items-object" else rows

    response = await import_(client, tenant_a, "leads", json=payload)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["imported"] == 3 and len(set(body["ids"])) == 3
    listed = await list_all(client, tenant_a, "leads")
    assert {row["id"] for row in listed} == set(body["ids"])
    assert {row["name"] for row in listed} == {"Imported A", "Imported B", "Imported C"}
    by_name = {row["name"]: row for row in listed}
    assert by_name["Imported A"]["status"] == "won"
    assert by_name["Imported B"]["status"] == "new"
    assert by_name["Imported C"]["score"] == 7


@pytest.mark.parametrize(
    "bad_row",
    [{"name": ""}, {"name": "ok", "status": "maybe"}, {"name": "ok", "unknown": 1}, {"email": "x"}],
    ids=["empty-name", "bad-status", "unknown-field", "no-name"],
)
async def test_import_with_one_bad_row_imports_nothing_and_points_at_the_row(
    client: AsyncClient, tenant_a: TenantHandle, bad_row: dict[str, Any]
) -> None:
    await create(client, tenant_a, "leads", {"name": "Already here"})
    before = await ids_of(client, tenant_a, "leads")

    response = await import_(
        client, tenant_a, "leads", json={"items": [{"name": "good 0"}, bad_row, {"name": "good 2"}]}
    )

    error = assert_error(response, 422, "invalid_request")
    rows = error["details"]["rows"]
    assert rows and {entry["row"] for entry in rows} == {1}
    assert all(entry["message"] for entry in rows)
    assert await ids_of(client, tenant_a, "leads") == before


async def test_import_reports_every_bad_row(client: AsyncClient, tenant_a: TenantHandle) -> None:
    response = await import_(
        client, tenant_a, "clients", json=[{"name": ""}, {"name": "fine"}, {"nme": "typo"}]
    )

    error = assert_error(response, 422, "invalid_request")
    assert {entry["row"] for entry in error["details"]["rows"]} == {0, 2}
    assert await ids_of(client, tenant_a, "clients") == set()


async def test_csv_import_with_a_header_and_empty_cells(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    csv_text = (
        "name,email,company,score,status\r\n"
        "Ann Example,ann@example.com,Ann Co,55,qualified\r\n"
        'Bob Example,,"Bob, Inc.",,\r\n'
    )

    response = await import_csv(client, tenant_a, "leads", csv_text)

    assert response.status_code == 201, response.text
    assert response.json()["imported"] == 2
    rows = {row["name"]: row for row in await list_all(client, tenant_a, "leads")}
    assert rows["Ann Example"]["score"] == 55 and rows["Ann Example"]["status"] == "qualified"
    assert rows["Bob Example"]["email"] is None
    assert rows["Bob Example"]["score"] is None
    assert rows["Bob Example"]["status"] == "new"
    assert rows["Bob Example"]["company"] == "Bob, Inc."


async def test_csv_import_reads_json_object_cells_and_a_byte_order_mark(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    csv_text = '\ufeffname,attributes\nAcme,"{""tier"": ""gold""}"\n'

    response = await import_csv(client, tenant_a, "clients", csv_text)

    assert response.status_code == 201, response.text
    [row] = await list_all(client, tenant_a, "clients")
    assert row["name"] == "Acme" and row["attributes"] == {"tier": "gold"}


async def test_csv_import_with_an_unknown_column_is_422_and_imports_nothing(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await import_csv(client, tenant_a, "leads", "name,favourite_colour\nAnn,blue\n")

    error = assert_error(response, 422, "invalid_request")
    assert "favourite_colour" in error["message"]
    assert await ids_of(client, tenant_a, "leads") == set()


async def test_csv_import_with_a_bad_row_imports_nothing(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await import_csv(client, tenant_a, "leads", "name,score\nAnn,10\nBob,lots\n")

    error = assert_error(response, 422, "invalid_request")
    assert [entry["row"] for entry in error["details"]["rows"]] == [1]
    assert await ids_of(client, tenant_a, "leads") == set()


async def test_csv_import_with_a_cell_over_the_csv_field_limit_names_its_row(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    long_cell = "x" * 131_073  # one over the csv module's field limit
    csv_text = f"name,notes\nAnn,short\nBob,{long_cell}\n"

    response = await import_csv(client, tenant_a, "clients", csv_text)

    error = assert_error(response, 422, "invalid_request")
    assert [entry["row"] for entry in error["details"]["rows"]] == [1]
    assert "row 1" in error["message"]
    assert await ids_of(client, tenant_a, "clients") == set()


async def test_import_over_the_row_limit_is_422_and_imports_nothing(
    client: AsyncClient, tenant_a: TenantHandle, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.opshub.settings, "import_max_rows", 3)

    too_many = await import_(client, tenant_a, "leads", json=[{"name": f"n{i}"} for i in range(4)])
    too_many_csv = await import_csv(client, tenant_a, "leads", "name\na\nb\nc\nd\n")

    assert "3" in assert_error(too_many, 422, "invalid_request")["message"]
    assert_error(too_many_csv, 422, "invalid_request")
    assert await ids_of(client, tenant_a, "leads") == set()
    at_limit = await import_(client, tenant_a, "leads", json=[{"name": f"n{i}"} for i in range(3)])
    assert at_limit.status_code == 201, at_limit.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"[]", "application/json"), (b'{"items": []}', "application/json"), (b"name\n", "text/csv")],
    ids=["empty-array", "empty-items", "csv-header-only"],
)
async def test_an_empty_import_is_422(
    client: AsyncClient, tenant_a: TenantHandle, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/v1/data/leads/import",
        content=content,
        headers={**tenant_a.headers, "Content-Type": content_type},
    )

    assert_error(response, 422, "invalid_request")
