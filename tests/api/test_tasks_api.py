"""/v1/tasks through the API alone (no worker runs, so submitted tasks stay queued).

Covers the shapes of API.md "Tasks": submit, read, list with cursor pagination and filters,
validation errors, idempotent submission (header or body key, also under concurrent requests),
cancel and retry, tenant isolation (another tenant's task is 404), the viewer role, webhook URL
checks, and the ``task.queued`` domain event a submit writes to the outbox.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.auth.models import Role
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, create_pool, tenant_transaction, transaction
from opshub.tasks import service as tasks_service
from opshub.tasks.schemas import TaskCreate
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle


async def submit(client: AsyncClient, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    body.setdefault("input", "How are our campaigns doing?")
    response = await client.post("/v1/tasks", json=body, headers=tenant.headers)
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def make_webhook_secret(client: AsyncClient, tenant: TenantHandle) -> str:
    response = await client.post("/v1/webhook-secret", headers=tenant.headers)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


async def test_submit_answers_202_with_a_queued_task_in_the_documented_shape(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "Summarise last week's leads", "priority": 5},
        headers=tenant_a.headers,
    )

    assert response.status_code == 202, response.text
    task = response.json()
    uuid.UUID(task["id"])
    assert task["status"] == "queued"
    assert task["crew"] == "assistant"
    assert task["input"] == "Summarise last week's leads"
    assert task["priority"] == 5
    assert task["created_at"]
    assert task["attempt"] == 0
    assert task["pending_actions"] == []
    assert task["result"] is None and task["error"] is None
    assert task["started_at"] is None and task["finished_at"] is None
    usage = task["usage"]
    assert usage["input_tokens"] == 0 and usage["output_tokens"] == 0
    assert float(usage["cost_usd"]) == 0
    assert set(usage) >= {"input_tokens", "output_tokens", "cost_usd", "billed_to"}


async def test_a_submitted_task_reads_back_the_same(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    submitted = await submit(client, tenant_a, inputs={"region": "EU"})

    response = await client.get(f"/v1/tasks/{submitted['id']}", headers=tenant_a.headers)

    assert response.status_code == 200, response.text
    assert response.json() == submitted
    assert response.json()["inputs"] == {"region": "EU"}


async def test_submit_without_crew_is_accepted_for_routing(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    task = await submit(client, tenant_a, input="Route me somewhere sensible")
    assert task["status"] == "queued"
    assert task["crew"] is None


async def test_list_is_newest_first_and_pages_with_next_cursor_without_loss_or_duplicates(
    client: AsyncClient, make_tenant: Any
) -> None:
    tenant = await make_tenant("Pager")
    created = [(await submit(client, tenant, input=f"task {n}"))["id"] for n in range(5)]

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/tasks", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"

    assert [len(page) for page in pages] == [2, 2, 1]
    seen = [task_id for page in pages for task_id in page]
    assert seen == list(reversed(created))


async def test_list_filters_by_status_crew_and_thread(
    client: AsyncClient, make_tenant: Any
) -> None:
    tenant = await make_tenant("Filters")
    thread = await client.post("/v1/threads", json={}, headers=tenant.headers)
    assert thread.status_code == 201, thread.text
    thread_id = thread.json()["id"]
    routed = await submit(client, tenant, input="no crew named")
    named = await submit(client, tenant, crew="assistant", input="crew named")
    in_thread = await submit(client, tenant, input="in a thread", thread_id=thread_id)
    cancelled = await submit(client, tenant, input="to be cancelled")
    response = await client.post(f"/v1/tasks/{cancelled['id']}/cancel", headers=tenant.headers)
    assert response.status_code == 202, response.text

    async def ids(**params: Any) -> set[str]:
        response = await client.get("/v1/tasks", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert await ids() == {routed["id"], named["id"], in_thread["id"], cancelled["id"]}
    assert await ids(status="cancelled") == {cancelled["id"]}
    assert await ids(status="queued") == {routed["id"], named["id"], in_thread["id"]}
    assert await ids(crew="assistant") == {named["id"]}
    assert await ids(thread_id=thread_id) == {in_thread["id"]}
    assert await ids(status="succeeded") == set()


async def test_a_garbled_cursor_is_an_invalid_request(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.get(
        "/v1/tasks", params={"cursor": "not-a-cursor"}, headers=tenant_a.headers
    )
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


async def test_an_unknown_crew_is_refused_with_unknown_crew(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/v1/tasks", json={"crew": "astrology", "input": "x"}, headers=tenant_a.headers
    )
    assert response.status_code == 422, response.text
    assert error_code(response) == "unknown_crew"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": "x", "priority": 10}, "priority"),
        ({"input": "x", "priority": -1}, "priority"),
        ({"input": ""}, "input"),
        ({"input": "   "}, "input"),
        ({}, "input"),
        ({"input": "x", "colour": "blue"}, "colour"),
        ({"input": "nul\u0000byte"}, "input"),
        ({"input": "x", "inputs": {"k": "a\u0000b"}}, "inputs"),
    ],
    ids=[
        "priority-too-high",
        "priority-negative",
        "empty-input",
        "blank-input",
        "missing-input",
        "extra-field",
        "nul-in-input",
        "nul-in-inputs",
    ],
)
async def test_bad_submissions_are_invalid_requests_naming_the_field(
    client: AsyncClient, tenant_a: TenantHandle, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/tasks", json=body, headers=tenant_a.headers)

    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_request"
    assert field in response.text


async def test_concurrent_submits_with_one_idempotency_key_make_exactly_one_task(
    client: AsyncClient, make_tenant: Any, owner_pool: asyncpg.Pool
) -> None:
    tenant = await make_tenant("Idempotent")
    key = f"order-{uuid.uuid4().hex}"
    headers = {**tenant.headers, "Idempotency-Key": key}

    responses = await asyncio.gather(
        *(
            client.post("/v1/tasks", json={"input": "Ship the order"}, headers=headers)
            for _ in range(20)
        )
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 19 + [202], [r.text for r in responses if r.status_code >= 300]
    assert len({response.json()["id"] for response in responses}) == 1
    rows = await owner_pool.fetchval(
        "SELECT count(*) FROM tasks WHERE tenant_id = $1 AND idempotency_key = $2",
        tenant.id,
        key,
    )
    assert rows == 1
    assert (
        await owner_pool.fetchval("SELECT count(*) FROM tasks WHERE tenant_id = $1", tenant.id) == 1
    )


async def test_the_body_idempotency_key_also_returns_the_same_task_with_200(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    key = f"k-{uuid.uuid4().hex}"
    first = await client.post(
        "/v1/tasks", json={"input": "x", "idempotency_key": key}, headers=tenant_a.headers
    )
    again = await client.post(
        "/v1/tasks",
        json={"input": "x"},
        headers={**tenant_a.headers, "Idempotency-Key": key},
    )

    assert first.status_code == 202, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]


async def test_the_same_idempotency_key_in_another_tenant_is_a_different_task(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    key = f"shared-{uuid.uuid4().hex}"
    a = await client.post(
        "/v1/tasks", json={"input": "x"}, headers={**tenant_a.headers, "Idempotency-Key": key}
    )
    b = await client.post(
        "/v1/tasks", json={"input": "x"}, headers={**tenant_b.headers, "Idempotency-Key": key}
    )
    assert a.status_code == 202 and b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


async def test_differing_header_and_body_idempotency_keys_are_refused(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/v1/tasks",
        json={"input": "x", "idempotency_key": "body-key"},
        headers={**tenant_a.headers, "Idempotency-Key": "header-key"},
    )
    assert response.status_code == 422, response.text
    assert error_code(response) == "idempotency_key_mismatch"


async def test_cancelling_a_queued_task_ends_it_and_a_second_cancel_conflicts(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    task = await submit(client, tenant_a)

    cancelled = await client.post(f"/v1/tasks/{task['id']}/cancel", headers=tenant_a.headers)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    read = await client.get(f"/v1/tasks/{task['id']}", headers=tenant_a.headers)
    assert read.json()["status"] == "cancelled"

    again = await client.post(f"/v1/tasks/{task['id']}/cancel", headers=tenant_a.headers)
    assert again.status_code == 409, again.text
    assert error_code(again) == "task_finished"


async def test_a_cancelled_queued_task_replays_its_cancel_event_and_closes(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    task = await submit(client, tenant_a)
    await client.post(f"/v1/tasks/{task['id']}/cancel", headers=tenant_a.headers)

    response = await client.get(f"/v1/tasks/{task['id']}/events", headers=tenant_a.headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: task.cancelled" in response.text


async def test_a_queued_task_is_not_retryable(client: AsyncClient, tenant_a: TenantHandle) -> None:
    task = await submit(client, tenant_a)

    response = await client.post(f"/v1/tasks/{task['id']}/retry", headers=tenant_a.headers)

    assert response.status_code == 409, response.text
    assert error_code(response) == "task_not_retryable"


async def test_retrying_a_cancelled_task_makes_a_new_linked_task(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    old = await submit(client, tenant_a, crew="assistant", input="Retry me", priority=3)
    await client.post(f"/v1/tasks/{old['id']}/cancel", headers=tenant_a.headers)

    response = await client.post(f"/v1/tasks/{old['id']}/retry", headers=tenant_a.headers)

    assert response.status_code == 202, response.text
    new = response.json()
    assert new["id"] != old["id"]
    assert new["retry_of"] == old["id"]
    assert new["status"] == "queued"
    assert (new["crew"], new["input"], new["priority"]) == ("assistant", "Retry me", 3)
    old_now = await client.get(f"/v1/tasks/{old['id']}", headers=tenant_a.headers)
    assert old_now.json()["status"] == "cancelled"


async def test_another_tenants_task_is_not_found_everywhere(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    task = await submit(client, tenant_a)
    path = f"/v1/tasks/{task['id']}"

    for method, url in [
        ("GET", path),
        ("POST", f"{path}/cancel"),
        ("POST", f"{path}/retry"),
        ("GET", f"{path}/events"),
    ]:
        response = await client.request(method, url, headers=tenant_b.headers)
        assert response.status_code == 404, (method, url, response.text)
        assert error_code(response) == "not_found"
    listed = await client.get("/v1/tasks", headers=tenant_b.headers)
    assert task["id"] not in {item["id"] for item in listed.json()["items"]}
    # And the owner's task was left alone.
    mine = await client.get(path, headers=tenant_a.headers)
    assert mine.json()["status"] == "queued"


async def test_an_unknown_task_id_is_not_found(client: AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.get(f"/v1/tasks/{uuid.uuid4()}", headers=tenant_a.headers)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


async def test_a_viewer_reads_tasks_but_cannot_submit_cancel_or_retry(
    client: AsyncClient, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    async with transaction(owner_pool) as conn:
        _, viewer_key = await tenants_service.create_api_key(
            conn, tenant_id=tenant_a.id, name="dashboard", role=Role.viewer
        )
    viewer = {"Authorization": f"Bearer {viewer_key}"}
    task = await submit(client, tenant_a)

    assert (await client.get(f"/v1/tasks/{task['id']}", headers=viewer)).status_code == 200
    listed = await client.get("/v1/tasks", headers=viewer)
    assert listed.status_code == 200
    assert task["id"] in {item["id"] for item in listed.json()["items"]}

    for url, body in [
        ("/v1/tasks", {"input": "viewer wants work done"}),
        (f"/v1/tasks/{task['id']}/cancel", None),
        (f"/v1/tasks/{task['id']}/retry", None),
    ]:
        response = await client.post(url, json=body, headers=viewer)
        assert response.status_code == 403, (url, response.text)
    still = await client.get(f"/v1/tasks/{task['id']}", headers=tenant_a.headers)
    assert still.json()["status"] == "queued"


async def test_a_webhook_url_needs_the_tenants_webhook_secret_first(
    client: AsyncClient, make_tenant: Any
) -> None:
    tenant = await make_tenant("No Secret")
    body = {"input": "x", "webhook_url": "https://hooks.example.com/opshub"}

    refused = await client.post("/v1/tasks", json=body, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert error_code(refused) == "webhook_secret_missing"

    await make_webhook_secret(client, tenant)
    accepted = await client.post("/v1/tasks", json=body, headers=tenant.headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["webhook_url"] == "https://hooks.example.com/opshub"
    # Not for a worker of a later test to run and deliver.
    await client.post(f"/v1/tasks/{accepted.json()['id']}/cancel", headers=tenant.headers)


async def test_a_webhook_url_that_is_not_http_is_an_invalid_request(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/v1/tasks",
        json={"input": "x", "webhook_url": "ftp://files.example.com/x"},
        headers=tenant_a.headers,
    )
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


@pytest.fixture(scope="module")
async def strict_app(settings: Settings, urls: DatabaseUrls) -> AsyncIterator[FastAPI]:
    """The API as deployed by default: webhooks may not aim at internal addresses."""
    application = create_app(settings.model_copy(update={"allow_internal_urls": False}), urls)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def strict_client(strict_app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=strict_app), base_url="http://opshub") as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
async def test_a_webhook_on_an_internal_address_is_refused_unless_allowed(
    strict_client: AsyncClient, make_tenant: Any, url: str
) -> None:
    tenant = await make_tenant("Strict")
    await make_webhook_secret(strict_client, tenant)

    refused = await strict_client.post(
        "/v1/tasks", json={"input": "x", "webhook_url": url}, headers=tenant.headers
    )
    assert refused.status_code == 422, refused.text
    assert error_code(refused) == "invalid_request"
    assert "webhook_url" in refused.text

    public = await strict_client.post(
        "/v1/tasks",
        json={"input": "x", "webhook_url": "https://hooks.example.com/x"},
        headers=tenant.headers,
    )
    assert public.status_code == 202, public.text
    await strict_client.post(f"/v1/tasks/{public.json()['id']}/cancel", headers=tenant.headers)


async def test_submitting_writes_a_task_queued_event_to_the_outbox(
    client: AsyncClient, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    task = await submit(client, tenant_a, crew="assistant")

    rows = await owner_pool.fetch(
        "SELECT tenant_id, event_type, data FROM outbox "
        "WHERE tenant_id = $1 AND data->>'task_id' = $2",
        tenant_a.id,
        task["id"],
    )

    assert [row["event_type"] for row in rows] == ["task.queued"]
    assert rows[0]["data"]["status"] == "queued"
    assert rows[0]["data"]["crew"] == "assistant"


async def test_a_submission_writes_its_task_and_event_in_one_statement(
    urls: DatabaseUrls, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    """From a transaction's first write to its commit every tenant's ``/v1/events`` waits: the
    task and its ``task.queued`` event (the request's start, as lists show it) are one
    statement."""
    statements: list[str] = []
    pool = await create_pool(urls.app, size=1, transactions_only=True)
    try:
        async with tenant_transaction(pool, tenant_a.id) as conn:  # types looked up once
            await tasks_service.submit_task(
                conn, tenant_id=tenant_a.id, body=TaskCreate(crew="assistant", input="warm")
            )
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda logged: statements.append(logged.query))
        async with tenant_transaction(pool, tenant_a.id) as conn:
            task, created = await tasks_service.submit_task(
                conn, tenant_id=tenant_a.id, body=TaskCreate(crew="assistant", input="x" * 300)
            )
    finally:
        await pool.close()

    assert created
    begin, _tenant_bound, written, commit = statements
    assert (begin, commit) == ("BEGIN;", "COMMIT;")
    assert written.startswith("WITH inserted AS (")
    data = await owner_pool.fetchval(
        "SELECT data FROM outbox WHERE tenant_id = $1 AND data->>'task_id' = $2",
        tenant_a.id,
        str(task.id),
    )
    assert data == {
        "task_id": str(task.id), "status": "queued", "crew": "assistant", "input": "x" * 200,
    }  # fmt: skip


async def test_an_idempotent_replay_writes_no_second_outbox_event(
    client: AsyncClient, tenant_a: TenantHandle, owner_pool: asyncpg.Pool
) -> None:
    headers = {**tenant_a.headers, "Idempotency-Key": f"once-{uuid.uuid4().hex}"}
    first = await client.post("/v1/tasks", json={"input": "x"}, headers=headers)
    second = await client.post("/v1/tasks", json={"input": "x"}, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)

    count = await owner_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND data->>'task_id' = $2",
        tenant_a.id,
        first.json()["id"],
    )
    assert count == 1
