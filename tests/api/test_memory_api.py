"""/v1/memories (API.md "Memory"): add, search, read, forget and erase, with the real local model.

What a caller sees: a memory it adds is found again by meaning; a repeat is answered with the
stored memory (200), a newer fact on the same subject hides the older one from search while the
old id still reads with ``superseded_by``; filters by scope and kind; deleting one, forgetting a
scope, erasing everything (admins only); the extraction setting; another tenant never reaches
any of it; and bad input is a 422 in the error envelope that writes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.conftest import TenantHandle


async def add(client: AsyncClient, tenant: TenantHandle, content: str, **fields: Any) -> Response:
    return await client.post(
        "/v1/memories", json={"content": content, **fields}, headers=tenant.headers
    )


async def added(client: AsyncClient, tenant: TenantHandle, content: str, **fields: Any) -> str:
    response = await add(client, tenant, content, **fields)
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "created", response.text
    memory_id: str = response.json()["memory"]["id"]
    return memory_id


async def listing(
    client: AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get("/v1/memories", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def key_with_role(client: AsyncClient, tenant: TenantHandle, role: str) -> dict[str, str]:
    response = await client.post(
        "/v1/keys", json={"name": f"{role} key", "role": role}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


# -- add, search, read --------------------------------------------------------------------------


async def test_an_added_memory_is_found_by_meaning_and_reads_back(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    await added(client, tenant_a, "The blue ceramic mug is our best seller in winter.")
    response = await add(
        client,
        tenant_a,
        "Acme prefers to be contacted by email.",
        kind="preference",
        subject="acme.contact",
        importance=0.8,
        metadata={"source": "call notes"},
    )
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["outcome"] == "created"
    assert saved["superseded"] == []
    memory = saved["memory"]
    assert memory["content"] == "Acme prefers to be contacted by email."
    assert memory["scope"] == "tenant"
    assert memory["kind"] == "preference"
    assert memory["subject"] == "acme.contact"
    assert memory["importance"] == 0.8
    assert memory["metadata"] == {"source": "call notes"}
    assert memory["embedding_model"] == "local/all-MiniLM-L6-v2"
    assert memory["superseded_by"] is None

    hits = await listing(client, tenant_a.headers, query="How should we reach Acme?")
    assert hits[0]["id"] == memory["id"]
    assert hits[0]["content"] == "Acme prefers to be contacted by email."
    assert hits[0]["score"] > 0
    assert hits[0]["similarity"] is not None and hits[0]["similarity"] > 0.4
    assert hits[0]["score"] >= max(hit["score"] for hit in hits)

    one = await client.get(f"/v1/memories/{memory['id']}", headers=tenant_a.headers)
    assert one.status_code == 200, one.text
    read = one.json()
    assert {k: read[k] for k in ("id", "content", "kind", "scope", "subject")} == {
        k: memory[k] for k in ("id", "content", "kind", "scope", "subject")
    }
    assert read["superseded_by"] is None
    # Found by a search: it says so.
    assert read["recall_count"] >= 1 and read["last_recalled_at"] is not None


async def test_the_same_memory_twice_is_a_200_duplicate_with_the_same_id(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    first = await added(client, tenant_a, "Acme's brand colour is forest green.")

    again = await add(client, tenant_a, "  acme's brand colour is   FOREST green. ")
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["memory"]["id"] == first

    reworded = await add(client, tenant_a, "Acme's brand colour is a forest green.")
    assert reworded.status_code == 200, reworded.text
    assert reworded.json()["outcome"] == "refreshed"
    assert reworded.json()["memory"]["id"] == first

    assert [item["id"] for item in await listing(client, tenant_a.headers)] == [first]


async def test_a_newer_fact_on_the_same_subject_hides_the_old_one_but_keeps_its_history(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    old = await added(
        client, tenant_a, "Acme's Google Ads budget is 500 USD a day.", subject="acme.ads_budget"
    )
    response = await add(
        client, tenant_a, "Acme spends 800 USD a day on Google Ads.", subject="acme.ads_budget"
    )
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "superseded"
    assert response.json()["superseded"] == [old]
    new = response.json()["memory"]["id"]

    hits = await listing(client, tenant_a.headers, query="What is Acme's Google Ads budget?")
    assert [hit["id"] for hit in hits] == [new]
    assert [item["id"] for item in await listing(client, tenant_a.headers)] == [new]

    history = await client.get(f"/v1/memories/{old}", headers=tenant_a.headers)
    assert history.status_code == 200, history.text
    assert history.json()["superseded_by"] == new
    assert history.json()["content"] == "Acme's Google Ads budget is 500 USD a day."


async def test_going_back_to_an_earlier_value_supersedes_the_newer_one(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    await added(client, tenant_a, "Acme's ad budget is 500 USD a day.", subject="acme.budget")
    middle = await add(
        client, tenant_a, "Acme's ad budget is 800 USD a day.", subject="acme.budget"
    )
    back = await add(client, tenant_a, "Acme's ad budget is 500 USD a day.", subject="acme.budget")
    assert back.status_code == 201, back.text
    assert back.json()["outcome"] == "superseded"
    assert back.json()["superseded"] == [middle.json()["memory"]["id"]]
    assert [item["content"] for item in await listing(client, tenant_a.headers)] == [
        "Acme's ad budget is 500 USD a day."
    ]


async def test_deleting_the_current_fact_does_not_bring_back_the_one_it_replaced(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    old = await added(client, tenant_a, "Acme's CEO is Ann Smith.", subject="acme.ceo")
    new = (await add(client, tenant_a, "Acme's CEO is Bob Jones.", subject="acme.ceo")).json()
    assert new["outcome"] == "superseded"

    response = await client.delete(f"/v1/memories/{new['memory']['id']}", headers=tenant_a.headers)
    assert response.status_code == 204, response.text

    assert await listing(client, tenant_a.headers) == []
    assert await listing(client, tenant_a.headers, query="Who runs Acme?") == []
    assert_error(
        await client.get(f"/v1/memories/{old}", headers=tenant_a.headers), 404, "not_found"
    )


async def test_an_expired_memory_is_no_longer_recalled(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    expired = await added(
        client,
        tenant_a,
        "Promo code WINTER10 gives 10 percent off.",
        expires_at="2020-01-31T00:00:00Z",
    )
    current = await added(
        client,
        tenant_a,
        "Promo code SPRING15 gives 15 percent off.",
        expires_at="2999-01-01T00:00:00Z",
    )
    assert [item["id"] for item in await listing(client, tenant_a.headers)] == [current]
    hits = await listing(client, tenant_a.headers, query="Which promo code gives 10 percent off?")
    assert [hit["id"] for hit in hits] == [current]
    # Still readable by id, as a record of what was known.
    response = await client.get(f"/v1/memories/{expired}", headers=tenant_a.headers)
    assert response.status_code == 200, response.text


async def test_adding_an_expired_memory_again_makes_it_current(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    await added(
        client,
        tenant_a,
        "Promo code WINTER10 gives 10 percent off.",
        expires_at="2020-01-31T00:00:00Z",
    )
    again = await add(client, tenant_a, "Promo code WINTER10 gives 10 percent off.")
    # The same words in the same scope are a duplicate (200, API.md), now without the expiry.
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "duplicate", again.json()
    assert again.json()["memory"]["expires_at"] is None, again.json()
    assert [item["content"] for item in await listing(client, tenant_a.headers)] == [
        "Promo code WINTER10 gives 10 percent off."
    ]


# -- filters and listing ------------------------------------------------------------------------


async def test_a_scope_filter_returns_only_that_scopes_memories(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    thread = f"thread:{uuid.uuid4()}"
    in_thread = await added(
        client,
        tenant_a,
        "In this chat we agreed the spring campaign starts in April.",
        scope=thread,
    )
    in_crew = await added(
        client, tenant_a, "The spring campaign targets garden owners.", scope="crew:marketing"
    )
    everywhere = await added(client, tenant_a, "The spring campaign budget is 2,000 euros.")
    query = "When does the spring campaign start?"

    crew_hits = await listing(client, tenant_a.headers, query=query, scope="crew:marketing")
    assert [hit["id"] for hit in crew_hits] == [in_crew]
    assert all(hit["scope"] == "crew:marketing" for hit in crew_hits)

    thread_hits = await listing(client, tenant_a.headers, query=query, scope=thread)
    assert [hit["id"] for hit in thread_hits] == [in_thread]
    assert thread_hits[0]["scope"] == thread

    tenant_hits = await listing(client, tenant_a.headers, scope="tenant")
    assert [hit["id"] for hit in tenant_hits] == [everywhere]
    # Another crew's scope holds nothing.
    assert await listing(client, tenant_a.headers, query=query, scope="crew:sales") == []
    # Without a filter, all three.
    unfiltered = await listing(client, tenant_a.headers, query=query)
    assert {hit["id"] for hit in unfiltered} == {in_thread, in_crew, everywhere}


async def test_a_kind_filter_returns_only_that_kind(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    fact = await added(client, tenant_a, "Globex orders office chairs every quarter.")
    preference = await added(
        client, tenant_a, "Globex wants quotes in euros, not dollars.", kind="preference"
    )
    insight = await added(
        client, tenant_a, "Globex buys more when we call before quarter end.", kind="insight"
    )
    query = "What do we know about Globex?"

    assert [h["id"] for h in await listing(client, tenant_a.headers, query=query, kind="fact")] == [
        fact
    ]
    preferred = await listing(client, tenant_a.headers, query=query, kind="preference")
    assert [h["id"] for h in preferred] == [preference]
    assert [h["id"] for h in await listing(client, tenant_a.headers, kind="insight")] == [insight]
    assert await listing(client, tenant_a.headers, kind="outcome") == []


async def test_without_a_query_the_newest_come_first(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    ids = [
        await added(client, tenant_a, text)
        for text in (
            "The newsletter goes out every Tuesday.",
            "Free shipping starts at 50 euros.",
            "Our warehouse is in Leeds.",
        )
    ]
    items = await listing(client, tenant_a.headers)
    assert [item["id"] for item in items] == ids[::-1]
    assert all(item["score"] == 0 and item["similarity"] is None for item in items)
    assert [item["id"] for item in await listing(client, tenant_a.headers, limit=2)] == ids[:0:-1]
    # A blank query is no query.
    assert [i["id"] for i in await listing(client, tenant_a.headers, query="  ")] == ids[::-1]


# -- forgetting ---------------------------------------------------------------------------------


async def test_a_deleted_memory_is_gone(client: AsyncClient, tenant_a: TenantHandle) -> None:
    kept = await added(client, tenant_a, "Initech wants weekly reports as a PDF.")
    gone = await added(client, tenant_a, "Initech's fiscal year starts in April.")

    response = await client.delete(f"/v1/memories/{gone}", headers=tenant_a.headers)
    assert response.status_code == 204, response.text

    assert_error(
        await client.get(f"/v1/memories/{gone}", headers=tenant_a.headers), 404, "not_found"
    )
    assert_error(
        await client.delete(f"/v1/memories/{gone}", headers=tenant_a.headers), 404, "not_found"
    )
    hits = await listing(client, tenant_a.headers, query="When does Initech's fiscal year start?")
    assert [hit["id"] for hit in hits] == [kept]
    assert [item["id"] for item in await listing(client, tenant_a.headers)] == [kept]


async def test_forgetting_a_scope_deletes_only_that_scope(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    thread, other_thread = f"thread:{uuid.uuid4()}", f"thread:{uuid.uuid4()}"
    await added(client, tenant_a, "We discussed the logo redesign.", scope=thread)
    await added(client, tenant_a, "The client liked the second logo draft.", scope=thread)
    kept = {
        await added(client, tenant_a, "We discussed the logo redesign.", scope=other_thread),
        await added(client, tenant_a, "Logo work is billed hourly.", scope="crew:marketing"),
        await added(client, tenant_a, "Our logo is a green fox."),
    }

    response = await client.delete(
        "/v1/memories", params={"scope": thread}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": 2}

    assert {item["id"] for item in await listing(client, tenant_a.headers)} == kept
    assert await listing(client, tenant_a.headers, scope=thread) == []
    again = await client.delete("/v1/memories", params={"scope": thread}, headers=tenant_a.headers)
    assert again.json() == {"deleted": 0}


async def test_forgetting_needs_a_valid_scope(client: AsyncClient, tenant_a: TenantHandle) -> None:
    kept = await added(client, tenant_a, "The summer sale runs in July.")

    missing = assert_error(
        await client.delete("/v1/memories", headers=tenant_a.headers), 422, "invalid_request"
    )
    assert missing["details"]["fields"][0]["loc"] == "query.scope"
    for scope in ("crew:", "planet:x", "thread:not-a-uuid"):
        response = await client.delete(
            "/v1/memories", params={"scope": scope}, headers=tenant_a.headers
        )
        assert_error(response, 422, "invalid_scope")
    assert [item["id"] for item in await listing(client, tenant_a.headers)] == [kept]


async def test_an_admin_erases_every_memory_including_history(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    old = await added(client, tenant_a, "Acme's CEO is Ann Smith.", subject="acme.ceo")
    newer = await add(client, tenant_a, "Acme's CEO is Bob Jones.", subject="acme.ceo")
    assert newer.json()["outcome"] == "superseded", newer.text
    thread_memory = await added(
        client, tenant_a, "We talked about Acme.", scope=f"thread:{uuid.uuid4()}"
    )
    ids = [old, newer.json()["memory"]["id"], thread_memory]

    for role in ("member", "viewer"):
        headers = await key_with_role(client, tenant_a, role)
        assert_error(await client.delete("/v1/memories/all", headers=headers), 403, "forbidden")
    assert len(await listing(client, tenant_a.headers)) == 2

    admin = await key_with_role(client, tenant_a, "admin")
    response = await client.delete("/v1/memories/all", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": 3}

    assert await listing(client, tenant_a.headers) == []
    assert await listing(client, tenant_a.headers, query="Who is Acme's CEO?") == []
    for memory_id in ids:
        response = await client.get(f"/v1/memories/{memory_id}", headers=tenant_a.headers)
        assert_error(response, 404, "not_found")


# -- roles and settings -------------------------------------------------------------------------


async def test_a_viewer_reads_memories_but_a_member_is_needed_to_change_them(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    memory_id = await added(client, tenant_a, "Acme's office is in Bristol.")
    viewer = await key_with_role(client, tenant_a, "viewer")

    assert [item["id"] for item in await listing(client, viewer, query="Where is Acme?")] == [
        memory_id
    ]
    assert (await client.get(f"/v1/memories/{memory_id}", headers=viewer)).status_code == 200
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/memories", {"json": {"content": "Viewers may not write."}}),
        ("DELETE", f"/v1/memories/{memory_id}", {}),
        ("DELETE", "/v1/memories", {"params": {"scope": "tenant"}}),
    ]
    for method, url, kwargs in writes:
        response = await client.request(method, url, headers=viewer, **kwargs)
        assert_error(response, 403, "forbidden")
    assert [item["id"] for item in await listing(client, tenant_a.headers)] == [memory_id]

    member = await key_with_role(client, tenant_a, "member")
    response = await client.post(
        "/v1/memories", json={"content": "Members may write."}, headers=member
    )
    assert response.status_code == 201, response.text


async def test_extraction_settings_are_read_by_anyone_and_changed_by_an_admin(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    viewer = await key_with_role(client, tenant_a, "viewer")
    member = await key_with_role(client, tenant_a, "member")

    initial = await client.get("/v1/memories/settings", headers=viewer)
    assert initial.status_code == 200, initial.text
    # The platform default (OPSHUB_MEMORY_EXTRACTION is on by default).
    assert initial.json() == {"embedding_model": "local/all-MiniLM-L6-v2", "extraction": True}

    for headers in (viewer, member):
        response = await client.patch(
            "/v1/memories/settings", json={"extraction": False}, headers=headers
        )
        assert_error(response, 403, "forbidden")
    assert (await client.get("/v1/memories/settings", headers=viewer)).json()["extraction"]

    off = await client.patch(
        "/v1/memories/settings", json={"extraction": False}, headers=tenant_a.headers
    )
    assert off.status_code == 200, off.text
    assert off.json() == {"embedding_model": "local/all-MiniLM-L6-v2", "extraction": False}
    assert (await client.get("/v1/memories/settings", headers=viewer)).json()["extraction"] is False

    admin = await key_with_role(client, tenant_a, "admin")
    on = await client.patch("/v1/memories/settings", json={"extraction": True}, headers=admin)
    assert on.status_code == 200, on.text
    assert on.json()["extraction"] is True

    for body in ({}, {"extraction": "maybe"}, {"extraction": True, "embedding_model": "x"}):
        response = await client.patch("/v1/memories/settings", json=body, headers=admin)
        assert_error(response, 422, "invalid_request")
    assert (await client.get("/v1/memories/settings", headers=viewer)).json()["extraction"]


async def test_settings_of_one_tenant_do_not_change_another(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    response = await client.patch(
        "/v1/memories/settings", json={"extraction": False}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    other = await client.get("/v1/memories/settings", headers=tenant_b.headers)
    assert other.json()["extraction"] is True


# -- isolation ----------------------------------------------------------------------------------


async def test_another_tenant_never_sees_gets_deletes_or_forgets_my_memories(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    secret = "Acme's renewal price for 2031 is 48,000 euros."
    thread = f"thread:{uuid.uuid4()}"
    mine = await added(client, tenant_a, secret, subject="acme.renewal")
    in_thread = await added(client, tenant_a, "Acme asked for a discount.", scope=thread)
    theirs = await added(client, tenant_b, "Blue Bakery's sourdough sells out by 10am.")

    for query in (secret, "What is Acme's renewal price?", "Acme"):
        hits = await listing(client, tenant_b.headers, query=query)
        assert [hit["id"] for hit in hits] in ([], [theirs]), query
    assert [item["id"] for item in await listing(client, tenant_b.headers)] == [theirs]
    assert await listing(client, tenant_b.headers, scope=thread) == []

    for memory_id in (mine, in_thread):
        assert_error(
            await client.get(f"/v1/memories/{memory_id}", headers=tenant_b.headers),
            404,
            "not_found",
        )
        assert_error(
            await client.delete(f"/v1/memories/{memory_id}", headers=tenant_b.headers),
            404,
            "not_found",
        )
    for scope in (thread, "tenant"):
        response = await client.delete(
            "/v1/memories", params={"scope": scope}, headers=tenant_b.headers
        )
        assert response.status_code == 200, response.text
    erased = await client.delete("/v1/memories/all", headers=tenant_b.headers)
    assert erased.json() == {"deleted": 0}  # its one memory went with scope=tenant above

    # A's memories are all still there.
    assert {item["id"] for item in await listing(client, tenant_a.headers)} == {mine, in_thread}
    hits = await listing(client, tenant_a.headers, query="What is Acme's renewal price?")
    assert hits[0]["id"] == mine


async def test_forgetting_another_tenants_scope_counts_nothing(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    thread = f"thread:{uuid.uuid4()}"
    mine = await added(client, tenant_a, "We agreed on a 10 percent discount.", scope=thread)

    response = await client.delete(
        "/v1/memories", params={"scope": thread}, headers=tenant_b.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": 0}
    assert [item["id"] for item in await listing(client, tenant_a.headers, scope=thread)] == [mine]


async def test_the_same_memory_in_another_tenant_is_its_own_and_replaces_nothing(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    mine = await added(client, tenant_a, "Acme's CEO is Ann Smith.", subject="acme.ceo")

    # Neither "duplicate" (that would hand B my memory) nor "superseded" (that would hide mine).
    same = await add(client, tenant_b, "Acme's CEO is Ann Smith.", subject="acme.ceo")
    assert same.status_code == 201, same.text
    assert same.json()["outcome"] == "created"
    assert same.json()["memory"]["id"] != mine
    newer = await add(client, tenant_b, "Acme's CEO is Bob Jones.", subject="acme.ceo")
    assert newer.json()["superseded"] == [same.json()["memory"]["id"]]

    read = await client.get(f"/v1/memories/{mine}", headers=tenant_a.headers)
    assert read.json()["superseded_by"] is None
    assert [item["id"] for item in await listing(client, tenant_a.headers)] == [mine]


# -- bad input ----------------------------------------------------------------------------------

BAD_BODIES = [
    pytest.param({"content": ""}, "invalid_request", id="empty-content"),
    pytest.param({"content": "   \n\t "}, "invalid_request", id="blank-content"),
    pytest.param({"content": "x" * 4_001}, "invalid_request", id="content-over-4000"),
    pytest.param({}, "invalid_request", id="no-content"),
    pytest.param({"content": "ok", "kind": "rumour"}, "invalid_request", id="unknown-kind"),
    pytest.param({"content": "ok", "scope": "crew:"}, "invalid_scope", id="scope-without-key"),
    pytest.param({"content": "ok", "scope": "planet:x"}, "invalid_scope", id="unknown-scope"),
    pytest.param(
        {"content": "ok", "scope": "thread:not-a-uuid"}, "invalid_scope", id="thread-not-a-uuid"
    ),
    pytest.param({"content": "ok", "scope": "tenant:x"}, "invalid_scope", id="tenant-with-key"),
    pytest.param({"content": "ok", "importance": 1.5}, "invalid_request", id="importance-over-1"),
    pytest.param({"content": "ok", "subject": ""}, "invalid_request", id="empty-subject"),
    pytest.param({"content": "ok", "colour": "red"}, "invalid_request", id="unknown-field"),
    pytest.param({"content": "ok", "superseded_by": None}, "invalid_request", id="read-only-field"),
    pytest.param({"content": "nul \x00 byte"}, "invalid_request", id="nul-byte"),
]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
async def test_a_bad_memory_is_refused_and_nothing_is_written(
    client: AsyncClient, tenant_a: TenantHandle, body: dict[str, Any], code: str
) -> None:
    response = await client.post("/v1/memories", json=body, headers=tenant_a.headers)
    error = assert_error(response, 422, code)
    if code == "invalid_request":
        assert error["details"]["fields"], error
        assert all(field["loc"].startswith("body") for field in error["details"]["fields"])
    assert await listing(client, tenant_a.headers) == []


BAD_QUERIES = [
    pytest.param({"limit": 0}, "invalid_request", id="limit-0"),
    pytest.param({"limit": 101}, "invalid_request", id="limit-101"),
    pytest.param({"limit": "ten"}, "invalid_request", id="limit-not-a-number"),
    pytest.param({"kind": "rumour"}, "invalid_request", id="unknown-kind"),
    pytest.param({"scope": "crew:"}, "invalid_scope", id="scope-without-key"),
    pytest.param({"scope": "planet:x"}, "invalid_scope", id="unknown-scope"),
    pytest.param({"scope": "thread:not-a-uuid"}, "invalid_scope", id="thread-not-a-uuid"),
    pytest.param({"query": "q" * 2_001}, "invalid_request", id="query-too-long"),
]


@pytest.mark.parametrize(("params", "code"), BAD_QUERIES)
async def test_a_bad_search_is_refused(
    client: AsyncClient, tenant_a: TenantHandle, params: dict[str, Any], code: str
) -> None:
    response = await client.get(
        "/v1/memories", params={"query": "anything", **params}, headers=tenant_a.headers
    )
    error = assert_error(response, 422, code)
    if code == "invalid_request":
        assert all(field["loc"].startswith("query") for field in error["details"]["fields"])


async def test_a_malformed_memory_id_is_refused(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    assert_error(
        await client.get("/v1/memories/not-an-id", headers=tenant_a.headers), 422, "invalid_request"
    )
    assert_error(
        await client.get(f"/v1/memories/{uuid.uuid4()}", headers=tenant_a.headers),
        404,
        "not_found",
    )


async def test_memories_need_a_key(client: AsyncClient) -> None:
    assert (await client.get("/v1/memories")).status_code == 401
    assert (await client.post("/v1/memories", json={"content": "anonymous"})).status_code == 401
