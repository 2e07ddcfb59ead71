"""/v1/actions and /v1/policies through the API (no executor runs: approved actions stay so).

Covers the shapes of API.md "Actions", listing with filters and cursors, approve and reject
with the 409 ``action_not_pending`` a second decision gets, the roles (only owners and admins
decide and set policies; viewers read), another tenant's action as 404, the 422s, a rejected
policy set leaving the old one whole, and a task's ``pending_actions``.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from httpx import AsyncClient

from opshub.actions.kinds import ActionKind
from opshub.auth.models import Role
from opshub.db.engine import transaction
from opshub.tenants import service as tenants_service
from tests.conftest import TenantHandle
from tests.integration.actions.test_service import make_task, product_payload, propose

ACTION_FIELDS = {
    "id", "task_id", "tool", "kind", "payload", "summary", "estimated_impact", "status",
    "created_at", "decided_at", "decided_by", "decision_reason", "executed_at", "outcome", "error",
}  # fmt: skip


async def headers_for(owner_pool: asyncpg.Pool, tenant: TenantHandle, role: Role) -> dict[str, str]:
    async with transaction(owner_pool) as conn:
        _, key = await tenants_service.create_api_key(
            conn, tenant_id=tenant.id, name=role.value, role=role
        )
    return {"Authorization": f"Bearer {key}"}


async def proposed(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant: TenantHandle, count: int = 1
) -> tuple[uuid.UUID, list[str]]:
    task_id = await make_task(owner_pool, tenant.id)
    ids = []
    for _ in range(count):
        sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
        action = await propose(
            app_pool, tenant.id, task_id, ActionKind.product_create, product_payload(sku)
        )
        ids.append(str(action.id))
    return task_id, ids


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_a_pending_action_reads_in_the_documented_shape(
    client: AsyncClient, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id, [action_id] = await proposed(app_pool, owner_pool, tenant_a)
    response = await client.get(f"/v1/actions/{action_id}", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    action = response.json()
    assert set(action) == ACTION_FIELDS
    assert action["task_id"] == str(task_id)
    assert action["kind"] == "saleor.product_create" and action["tool"] == "saleor"
    assert action["status"] == "pending"
    assert action["payload"]["price"] == "25.00"
    assert action["estimated_impact"] == {"amount": "12.50"}
    assert action["decided_at"] is None and action["outcome"] is None and action["error"] is None

    listed = await client.get("/v1/actions", params={"status": "pending"}, headers=tenant_a.headers)
    assert listed.status_code == 200
    assert action_id in {item["id"] for item in listed.json()["items"]}


async def test_list_filters_by_task_and_status_and_pages_with_a_cursor(
    client: AsyncClient, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id, ids = await proposed(app_pool, owner_pool, tenant_a, count=3)
    await client.post(f"/v1/actions/{ids[0]}/reject", headers=tenant_a.headers)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"task_id": str(task_id), "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/actions", params=params, headers=tenant_a.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each once

    pending = await client.get(
        "/v1/actions",
        params={"task_id": str(task_id), "status": "pending"},
        headers=tenant_a.headers,
    )
    assert [item["id"] for item in pending.json()["items"]] == [ids[2], ids[1]]


async def test_approve_then_a_second_decision_conflicts(
    client: AsyncClient, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    _, [action_id] = await proposed(app_pool, owner_pool, tenant_a)
    response = await client.post(
        f"/v1/actions/{action_id}/approve", json={"reason": "Looks right"}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    action = response.json()
    assert action["status"] == "approved"
    assert action["decided_by"].startswith("api_key:")
    assert action["decision_reason"] == "Looks right" and action["decided_at"]

    for verb in ("approve", "reject"):
        again = await client.post(f"/v1/actions/{action_id}/{verb}", headers=tenant_a.headers)
        assert again.status_code == 409, again.text
        # The client is told what the action became, in words and as a field to act on.
        assert again.json()["error"] == {
            "code": "action_not_pending",
            "message": "only a pending action can be decided; this one is approved",
            "details": {"status": "approved"},
        }
    read = await client.get(f"/v1/actions/{action_id}", headers=tenant_a.headers)
    assert read.json()["status"] == "approved"


async def test_rejecting_the_last_action_settles_the_task_and_empties_pending_actions(
    client: AsyncClient, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id, ids = await proposed(app_pool, owner_pool, tenant_a, count=2)
    task = (await client.get(f"/v1/tasks/{task_id}", headers=tenant_a.headers)).json()
    assert task["status"] == "awaiting_approval"
    assert [a["id"] for a in task["pending_actions"]] == ids
    assert set(task["pending_actions"][0]) == ACTION_FIELDS

    await client.post(f"/v1/actions/{ids[0]}/approve", headers=tenant_a.headers)
    task = (await client.get(f"/v1/tasks/{task_id}", headers=tenant_a.headers)).json()
    # Approved but not executed yet: still something the task waits for.
    assert [(a["id"], a["status"]) for a in task["pending_actions"]] == [
        (ids[0], "approved"), (ids[1], "pending"),
    ]  # fmt: skip

    rejected = await client.post(
        f"/v1/actions/{ids[1]}/reject", json={"reason": "Wrong price"}, headers=tenant_a.headers
    )
    assert rejected.json()["status"] == "rejected"
    task = (await client.get(f"/v1/tasks/{task_id}", headers=tenant_a.headers)).json()
    assert task["status"] == "awaiting_approval"  # the approved one still has to run
    assert [a["id"] for a in task["pending_actions"]] == [ids[0]]
    # The audit, newest first: each decision with its reason, none when none was given.
    audit = (await client.get("/v1/audit", headers=tenant_a.headers)).json()["items"]
    assert [(e["action_id"], e["event"], e["detail"]) for e in audit[:2]] == [
        (ids[1], "rejected", {"reason": "Wrong price"}), (ids[0], "approved", {}),
    ]  # fmt: skip


@pytest.mark.parametrize("role", [Role.member, Role.viewer])
async def test_only_owners_and_admins_decide_and_set_policies(
    client: AsyncClient,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    role: Role,
) -> None:
    _, [action_id] = await proposed(app_pool, owner_pool, tenant_a)
    headers = await headers_for(owner_pool, tenant_a, role)
    for verb in ("approve", "reject"):
        response = await client.post(f"/v1/actions/{action_id}/{verb}", headers=headers)
        assert response.status_code == 403, response.text
    rules = {"rules": [{"kind": "saleor.order_note", "auto_approve": True}]}
    assert (await client.put("/v1/policies", json=rules, headers=headers)).status_code == 403
    # Reading is for everyone in the tenant.
    assert (await client.get(f"/v1/actions/{action_id}", headers=headers)).status_code == 200
    assert (await client.get("/v1/actions", headers=headers)).status_code == 200
    assert (await client.get("/v1/policies", headers=headers)).status_code == 200
    read = await client.get(f"/v1/actions/{action_id}", headers=tenant_a.headers)
    assert read.json()["status"] == "pending"

    admin = await headers_for(owner_pool, tenant_a, Role.admin)
    approved = await client.post(f"/v1/actions/{action_id}/approve", headers=admin)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"


async def test_another_tenants_action_is_not_found_everywhere(
    client: AsyncClient,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    task_id, [action_id] = await proposed(app_pool, owner_pool, tenant_a)
    for method, url in [
        ("GET", f"/v1/actions/{action_id}"),
        ("POST", f"/v1/actions/{action_id}/approve"),
        ("POST", f"/v1/actions/{action_id}/reject"),
        ("GET", f"/v1/actions/{uuid.uuid4()}"),
    ]:
        response = await client.request(method, url, headers=tenant_b.headers)
        assert response.status_code == 404, (url, response.text)
        assert error_code(response) == "not_found"
    listed = await client.get(
        "/v1/actions", params={"task_id": str(task_id)}, headers=tenant_b.headers
    )
    assert listed.json() == {"items": [], "next_cursor": None}
    read = await client.get(f"/v1/actions/{action_id}", headers=tenant_a.headers)
    assert read.json()["status"] == "pending"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/v1/actions?status=done", None),
        ("GET", "/v1/actions?limit=0", None),
        ("GET", "/v1/actions?task_id=nope", None),
        ("GET", "/v1/actions?cursor=garbled", None),
        ("GET", "/v1/actions/not-a-uuid", None),
        ("POST", "/v1/actions/{id}/approve", {"reason": "fine", "extra": 1}),
        ("POST", "/v1/actions/{id}/reject", {"reason": "x" * 2001}),
        ("POST", "/v1/actions/{id}/reject", {"reason": "   "}),
        ("POST", "/v1/actions/{id}/approve", ["not", "an", "object"]),
    ],
)
async def test_bad_requests_are_invalid_requests_and_decide_nothing(
    client: AsyncClient,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    method: str,
    url: str,
    body: Any,
) -> None:
    _, [action_id] = await proposed(app_pool, owner_pool, tenant_a)
    response = await client.request(
        method, url.format(id=action_id), json=body, headers=tenant_a.headers
    )
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_request"
    read = await client.get(f"/v1/actions/{action_id}", headers=tenant_a.headers)
    assert read.json()["status"] == "pending"


async def test_policies_round_trip_and_a_refused_set_leaves_the_old_one_whole(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    empty = await client.get("/v1/policies", headers=tenant_a.headers)
    assert empty.status_code == 200 and empty.json() == {"rules": []}
    rules = [
        {"kind": "ads.budget_change", "auto_approve": True, "max_amount": 50, "currency": "USD"},
        {"kind": "saleor.order_note", "auto_approve": True},
    ]
    put = await client.put("/v1/policies", json={"rules": rules}, headers=tenant_a.headers)
    assert put.status_code == 200, put.text
    stored = put.json()["rules"]
    assert [(r["kind"], r["auto_approve"], r["currency"]) for r in stored] == [
        ("ads.budget_change", True, "USD"), ("saleor.order_note", True, None),
    ]  # fmt: skip
    assert float(stored[0]["max_amount"]) == 50 and stored[1]["max_amount"] is None
    assert all(r["updated_at"] for r in stored)

    for bad in [
        [{"kind": "saleor.delete_shop", "auto_approve": True}],
        [{"kind": "ads.budget_change", "auto_approve": True, "max_amount": 50}],
        [{"kind": "saleor.order_note", "auto_approve": True, "max_amount": 5, "currency": "USD"}],
        [{"kind": "ads.budget_change", "auto_approve": True, "currency": "usd"}],
        [{"kind": "ads.budget_change", "auto_approve": True, "max_amount": -1, "currency": "USD"}],
        [{"kind": "saleor.order_note", "auto_approve": True}] * 2,
        [{"kind": "saleor.order_note"}],
    ]:
        response = await client.put("/v1/policies", json={"rules": bad}, headers=tenant_a.headers)
        assert response.status_code == 422, (bad, response.text)
        assert error_code(response) == "invalid_request"
    after = await client.get("/v1/policies", headers=tenant_a.headers)
    assert after.json()["rules"] == stored

    cleared = await client.put("/v1/policies", json={"rules": []}, headers=tenant_a.headers)
    assert cleared.json() == {"rules": []}
