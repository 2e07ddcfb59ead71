"""GET /v1/threads (API.md v1.1, "Threads list"): a tenant's threads, newest first, paged."""

from __future__ import annotations

from httpx import AsyncClient

from tests.conftest import TenantHandle


async def make_thread(client: AsyncClient, tenant: TenantHandle, title: str) -> str:
    response = await client.post("/v1/threads", json={"title": title}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    thread_id: str = response.json()["id"]
    return thread_id


async def test_threads_list_newest_first_and_page_without_loss_or_duplicates(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    made = [await make_thread(client, tenant_a, f"thread {n}") for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/threads", params=params, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


async def test_a_thread_shows_when_its_last_message_came(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    quiet = await make_thread(client, tenant_a, "quiet")
    talked = await make_thread(client, tenant_a, "talked")
    posted = await client.post(
        f"/v1/threads/{talked}/messages", json={"content": "Hello"}, headers=tenant_a.headers
    )
    assert posted.status_code == 202, posted.text
    items = (await client.get("/v1/threads", headers=tenant_a.headers)).json()["items"]
    by_id = {item["id"]: item for item in items}
    assert by_id[quiet]["last_message_at"] is None
    assert by_id[quiet]["title"] == "quiet"
    assert by_id[talked]["last_message_at"] == posted.json()["message"]["created_at"]


async def test_threads_list_only_the_callers_tenant(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    mine = await make_thread(client, tenant_a, "mine")
    theirs = await make_thread(client, tenant_b, "theirs")
    items = (await client.get("/v1/threads", headers=tenant_a.headers)).json()["items"]
    ids = {item["id"] for item in items}
    assert mine in ids
    assert theirs not in ids


async def test_a_garbled_threads_cursor_is_an_invalid_request(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.get("/v1/threads?cursor=nope", headers=tenant_a.headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
