"""The actions service on the shared database: proposals, policies, decisions, the audit.

Covered: a proposal approved by a person is executed once at the fake shop by the executor
loop; a rejected one never reaches it; a budget-change policy approves under its cap, not above
it and never in another currency; a retried proposal stays one action; another tenant sees
nothing; the audit can't be changed, not even by the owner, yet goes with an erased tenant; a
task awaiting approval succeeds when its last action is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from opshub.actions import policies
from opshub.actions import service as actions_service
from opshub.actions.errors import ActionNotPendingError, InvalidActionError
from opshub.actions.kinds import ActionKind
from opshub.actions.schemas import ActionRead, PoliciesPut, PolicyRule
from opshub.config import Settings
from opshub.credentials.resolver import CredentialResolver
from opshub.db.engine import DatabaseUrls, create_pool, tenant_transaction
from opshub.errors import NotFoundError
from opshub.loops import stop_all
from opshub.runtime.action_executor import ActionExecutor
from tests.conftest import TenantHandle
from tests.fakes.saleor import FakeSaleorServer, global_id

SALEOR_TOKEN = "staff-token"


# --- Helpers, shared with test_executor. ---------------------------------------------------------


def product_payload(sku: str) -> dict[str, Any]:
    """A new product for the fake shop's seeded catalogue (a simple type, one channel)."""
    return {
        "product_type_id": global_id("ProductType", 2),
        "category_id": global_id("Category", 3),
        "name": f"Trail Bottle {sku}",
        "slug": f"trail-bottle-{sku.lower()}",
        "description": "Insulated, 750 ml.",
        "channel_ids": [global_id("Channel", 1)],
        "sku": sku,
        "price": "25.00",
        "warehouse_id": global_id("Warehouse", 1),
        "quantity": 10,
    }


def budget_payload(daily: str, previous: str | None, currency: str = "USD") -> dict[str, Any]:
    return {
        "channel": "meta_ads",
        "campaign_id": "120330000000000001",
        "daily_budget": daily,
        "previous_daily_budget": previous,
        "currency": currency,
    }


async def make_task(
    owner: asyncpg.Pool, tenant_id: uuid.UUID, status: str = "awaiting_approval"
) -> uuid.UUID:
    """A task whose run is over (or, with ``status="running"``, under way), made directly: no
    worker should pick it up."""
    async with owner.acquire() as conn:
        task_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO tasks (tenant_id, input, status, result, attempt, started_at)"
            " VALUES ($1, 'List the trail bottle in the shop', $2, $3, 1, now()) RETURNING id",
            tenant_id,
            status,
            "I proposed the product; it waits for your approval.",
        )
    return task_id


async def propose(
    app_pool: asyncpg.Pool,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    kind: ActionKind,
    payload: dict[str, Any],
    summary: str = "Create the product",
) -> ActionRead:
    async with tenant_transaction(app_pool, tenant_id) as conn:
        return await actions_service.propose(
            conn,
            tenant_id=tenant_id,
            task_id=task_id,
            tool="saleor" if str(kind).startswith("saleor") else "ads",
            kind=kind,
            payload=payload,
            summary=summary,
            estimated_impact={"amount": Decimal("12.50")},
        )


async def decide(
    app_pool: asyncpg.Pool, tenant_id: uuid.UUID, action_id: uuid.UUID, *, approve: bool
) -> ActionRead:
    decide_ = actions_service.approve if approve else actions_service.reject
    async with tenant_transaction(app_pool, tenant_id) as conn:
        return await decide_(
            conn, tenant_id=tenant_id, action_id=action_id, actor="user:test", reason="checked"
        )


async def audit_events(owner: asyncpg.Pool, action_id: uuid.UUID) -> list[str]:
    async with owner.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event FROM action_audit WHERE action_id = $1 ORDER BY id", action_id
        )
    return [row["event"] for row in rows]


async def wait_for_action(
    owner: asyncpg.Pool, action_id: uuid.UUID, statuses: set[str], within: float = 20.0
) -> asyncpg.Record:
    deadline = time.monotonic() + within
    while True:
        async with owner.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM actions WHERE id = $1", action_id)
        assert row is not None
        if row["status"] in statuses:
            return row
        assert time.monotonic() < deadline, f"action stayed {row['status']}"
        await asyncio.sleep(0.05)


async def executed_sentinel(
    app_pool: asyncpg.Pool,
    owner: asyncpg.Pool,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    sku: str,
) -> None:
    """Approve another product and wait until the executor has run it: proof that the loop has
    claimed everything claimable that came before (it claims oldest first), without a sleep."""
    sentinel = await propose(
        app_pool, tenant_id, task_id, ActionKind.product_create, product_payload(sku), sku
    )
    await decide(app_pool, tenant_id, sentinel.id, approve=True)
    row = await wait_for_action(owner, sentinel.id, {"executed", "failed"})
    assert row["status"] == "executed", row["error"]


def created_skus(saleor: FakeSaleorServer) -> list[str]:
    """The SKUs of the products the shop was asked to create, in order (``product_payload``
    names each product after its SKU)."""
    return [
        request.variables["input"]["name"].removeprefix("Trail Bottle ")
        for request in saleor.requests_for("ProductCreate")
        if request.variables
    ]


async def store_saleor_key(
    client: AsyncClient, tenant: TenantHandle, fake: FakeSaleorServer, token: str = SALEOR_TOKEN
) -> None:
    response = await client.put(
        "/v1/credentials/saleor",
        json={"secret": {"url": fake.url, "token": token}},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text


@contextlib.asynccontextmanager
async def executor_running(
    urls: DatabaseUrls, app_pool: asyncpg.Pool, app: FastAPI, settings: Settings
) -> AsyncIterator[ActionExecutor]:
    """An executor loop in this process, with a short lease and quick retries."""
    quick = settings.model_copy(
        update={
            "action_lease_seconds": 2.0,
            "action_retry_backoff_seconds": 0.1,
            "action_max_attempts": 3,
            "credential_cache_seconds": 0,
        }
    )
    owner = await create_pool(urls.owner, size=3)
    resolver = CredentialResolver(
        pool=app_pool, store=app.state.opshub.credential_store, settings=quick
    )
    executor = ActionExecutor(
        owner_pool=owner, app_pool=app_pool, resolver=resolver, settings=quick
    )
    task = asyncio.create_task(executor.run())
    try:
        yield executor
    finally:
        await stop_all([task])
        await owner.close()


@pytest.fixture(scope="module")
def saleor_fake() -> Iterator[FakeSaleorServer]:
    with FakeSaleorServer(tokens=[SALEOR_TOKEN, "other-token"]) as fake:
        yield fake


@pytest.fixture
def saleor(saleor_fake: FakeSaleorServer) -> FakeSaleorServer:
    saleor_fake.reset()
    return saleor_fake


# --- Decisions and execution. --------------------------------------------------------------------


async def test_an_approved_proposal_is_executed_once_at_the_shop(
    client: AsyncClient,
    app: FastAPI,
    urls: DatabaseUrls,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    saleor: FakeSaleorServer,
) -> None:
    await store_saleor_key(client, tenant_a, saleor)
    task_id = await make_task(owner_pool, tenant_a.id)
    action = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("TRAIL-1"))  # fmt: skip
    assert action.status == "pending" and action.decided_by is None
    assert action.estimated_impact == {"amount": "12.50"}

    async with executor_running(urls, app_pool, app, settings):
        # A pending action is nobody's to execute: the loop runs one later-approved past it.
        await executed_sentinel(app_pool, owner_pool, tenant_a.id, task_id, "TRAIL-1-A")
        assert created_skus(saleor) == ["TRAIL-1-A"]
        approved = await decide(app_pool, tenant_a.id, action.id, approve=True)
        assert approved.status == "approved" and approved.decided_by == "user:test"
        row = await wait_for_action(owner_pool, action.id, {"executed", "failed"})
        # A second look by the loop (it executes one approved after) finds nothing to redo.
        await executed_sentinel(app_pool, owner_pool, tenant_a.id, task_id, "TRAIL-1-B")

    assert row["status"] == "executed", row["error"]
    assert row["attempts"] == 1
    assert created_skus(saleor) == ["TRAIL-1-A", "TRAIL-1", "TRAIL-1-B"]
    assert row["outcome"]["sku"] == "TRAIL-1" and row["outcome"]["product_id"]
    assert await audit_events(owner_pool, action.id) == [
        "proposed", "approved", "execution_started", "executed",
    ]  # fmt: skip


async def test_a_rejected_proposal_never_reaches_the_shop(
    client: AsyncClient,
    app: FastAPI,
    urls: DatabaseUrls,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    saleor: FakeSaleorServer,
) -> None:
    await store_saleor_key(client, tenant_a, saleor)
    task_id = await make_task(owner_pool, tenant_a.id)
    action = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("TRAIL-2"))  # fmt: skip
    saleor.reset()  # forget the credential check's request
    async with executor_running(urls, app_pool, app, settings):
        rejected = await decide(app_pool, tenant_a.id, action.id, approve=False)
        # The loop has looked past the rejected one once it executes one approved after it.
        await executed_sentinel(app_pool, owner_pool, tenant_a.id, task_id, "TRAIL-2-A")
    assert rejected.status == "rejected" and rejected.decision_reason == "checked"
    assert created_skus(saleor) == ["TRAIL-2-A"]
    assert await audit_events(owner_pool, action.id) == ["proposed", "rejected"]
    with pytest.raises(ActionNotPendingError):
        await decide(app_pool, tenant_a.id, action.id, approve=True)


# --- Policies. -----------------------------------------------------------------------------------


async def set_rules(app_pool: asyncpg.Pool, tenant_id: uuid.UUID, *rules: PolicyRule) -> None:
    async with tenant_transaction(app_pool, tenant_id) as conn:
        await policies.put_policies(conn, tenant_id=tenant_id, body=PoliciesPut(rules=list(rules)))


async def test_a_budget_change_is_auto_approved_under_the_cap_only_in_its_currency(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    cap = PolicyRule(kind=ActionKind.budget_change, auto_approve=True, max_amount=Decimal(50),
                     currency="USD")  # fmt: skip
    await set_rules(app_pool, tenant_a.id, cap)
    task_id = await make_task(owner_pool, tenant_a.id)

    async def status_of(payload: dict[str, Any]) -> str:
        action = await propose(app_pool, tenant_a.id, task_id, ActionKind.budget_change, payload)
        return action.status

    assert await status_of(budget_payload("140", "100")) == "approved"  # +40 a day
    assert await status_of(budget_payload("60", "110")) == "approved"  # -50: at the cap
    assert await status_of(budget_payload("30", None)) == "approved"  # new: the whole 30
    assert await status_of(budget_payload("200", "100")) == "pending"  # +100
    assert await status_of(budget_payload("80", None)) == "pending"
    assert await status_of(budget_payload("140", "100", currency="EUR")) == "pending"

    auto = await propose(app_pool, tenant_a.id, task_id, ActionKind.budget_change,
                         budget_payload("101", "100"))  # fmt: skip
    assert auto.decided_by == "policy"
    assert auto.decision_reason is not None and "50.00 USD" in auto.decision_reason
    assert await audit_events(owner_pool, auto.id) == ["proposed", "auto_approved"]
    async with owner_pool.acquire() as conn:
        outbox = await conn.fetch(
            "SELECT event_type FROM outbox WHERE data->>'action_id' = $1 ORDER BY id", str(auto.id)
        )
    assert [row["event_type"] for row in outbox] == ["action.proposed", "action.approved"]
    # The audit (GET /v1/audit) names who did each: the tool proposed, the policy approved, by
    # the rule it applied.
    async with owner_pool.acquire() as conn:
        audit = await conn.fetch(
            "SELECT event, actor, detail FROM action_audit WHERE action_id = $1 ORDER BY id",
            auto.id,
        )
    assert [(row["event"], row["actor"]) for row in audit] == [
        ("proposed", "tool:ads"), ("auto_approved", "policy"),
    ]  # fmt: skip
    assert audit[0]["detail"] == {}
    rule = audit[1]["detail"]["rule"]
    assert (rule["kind"], Decimal(rule["max_amount"]), rule["currency"]) == (
        "ads.budget_change", Decimal(50), "USD",
    )  # fmt: skip
    # The task's watchers see each approval the policy gave (a pending proposal shows nothing).
    async with owner_pool.acquire() as conn:
        shown = await conn.fetch(
            "SELECT type, data->>'action_id' AS action_id FROM task_events WHERE task_id = $1"
            " ORDER BY seq",
            task_id,
        )
    assert [row["type"] for row in shown] == ["action.approved"] * 4
    assert shown[-1]["action_id"] == str(auto.id)


async def test_kinds_without_an_amount_follow_a_rule_without_a_cap(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    await set_rules(
        app_pool,
        tenant_a.id,
        PolicyRule(kind=ActionKind.order_note, auto_approve=True),
        PolicyRule(kind=ActionKind.campaign_status, auto_approve=False),
    )
    task_id = await make_task(owner_pool, tenant_a.id)
    note = {"order_id": global_id("Order", 1), "message": "Packed twice by mistake."}
    pause = {"channel": "meta_ads", "campaign_id": "120330000000000001", "status": "PAUSED"}
    noted = await propose(app_pool, tenant_a.id, task_id, ActionKind.order_note, note)
    assert noted.status == "approved"
    paused = await propose(app_pool, tenant_a.id, task_id, ActionKind.campaign_status, pause)
    assert paused.status == "pending"
    stock = {"variant_id": global_id("ProductVariant", 1), "warehouse_id": "W", "quantity": 3}
    stocked = await propose(app_pool, tenant_a.id, task_id, ActionKind.stock_update, stock)
    assert stocked.status == "pending"  # no rule for the kind at all


# --- Proposals. ----------------------------------------------------------------------------------


async def test_a_retried_proposal_is_the_same_action(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id = await make_task(owner_pool, tenant_a.id)
    payload = product_payload("TRAIL-3")
    first = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create, payload)
    reordered = dict(reversed(list(payload.items())))
    again = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create, reordered)
    assert again.id == first.id
    other_task = await make_task(owner_pool, tenant_a.id)
    elsewhere = await propose(app_pool, tenant_a.id, other_task, ActionKind.product_create, payload)
    assert elsewhere.id != first.id
    assert await audit_events(owner_pool, first.id) == ["proposed"]


async def test_a_payload_that_does_not_fit_its_kind_is_refused_and_nothing_stored(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id = await make_task(owner_pool, tenant_a.id)
    bad = {**product_payload("TRAIL-4"), "price": "-1", "colour": "red"}
    with pytest.raises(InvalidActionError) as refused:
        await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create, bad)
    assert refused.value.code == "invalid_request"
    locs = {field["loc"] for field in (refused.value.details or {})["fields"]}
    assert locs == {"payload.price", "payload.colour"}
    with pytest.raises(InvalidActionError):
        await propose(app_pool, tenant_a.id, task_id, "saleor.delete_everything", {})  # type: ignore[arg-type]
    async with owner_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM actions WHERE task_id = $1", task_id) == 0


async def test_a_proposal_needs_a_tool_name_and_a_summary_within_their_limits(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id = await make_task(owner_pool, tenant_a.id)
    notes = iter(range(100))

    async def proposal(summary: str, tool: str = "saleor") -> ActionRead:
        # A note of its own each time: the same payload would be the same proposal, whatever
        # its summary.
        note = {"order_id": global_id("Order", 1), "message": f"Note {next(notes)}"}
        async with tenant_transaction(app_pool, tenant_a.id) as conn:
            return await actions_service.propose(
                conn, tenant_id=tenant_a.id, task_id=task_id, tool=tool,
                kind=ActionKind.order_note, payload=note, summary=summary,
            )  # fmt: skip

    shortest = await proposal("  A \n", tool="s")
    assert (shortest.summary, shortest.tool) == ("A", "s")
    longest = await proposal("x" * 2000, tool="t" * 200)
    assert (len(longest.summary), len(longest.tool)) == (2000, 200)
    for summary, tool in [("   ", "saleor"), ("x" * 2001, "saleor"), ("Add a note", "t" * 201),
                          ("Add a note", "")]:  # fmt: skip
        with pytest.raises(InvalidActionError) as refused:
            await proposal(summary, tool)
        assert refused.value.message == (
            "an action needs a tool name and a summary of 1-2000 characters"
        )
    async with owner_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM actions WHERE task_id = $1", task_id) == 2


async def test_another_tenant_sees_nothing_of_an_action(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    task_id = await make_task(owner_pool, tenant_a.id)
    action = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("TRAIL-5"))  # fmt: skip
    async with tenant_transaction(app_pool, tenant_b.id) as conn:
        with pytest.raises(NotFoundError):
            await actions_service.get_action(conn, tenant_id=tenant_b.id, action_id=action.id)
        items, _ = await actions_service.list_actions(conn, tenant_id=tenant_b.id)
        assert action.id not in {item.id for item in items}
    with pytest.raises(NotFoundError):
        await decide(app_pool, tenant_b.id, action.id, approve=True)
    with pytest.raises(NotFoundError, match=r"^task not found$"):  # nor hang one on its task
        await propose(app_pool, tenant_b.id, task_id, ActionKind.product_create,
                      product_payload("TRAIL-6"))  # fmt: skip


# --- The audit. ----------------------------------------------------------------------------------


async def test_the_audit_is_append_only_yet_goes_with_an_erased_tenant(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, make_tenant: Any
) -> None:
    tenant = await make_tenant("Erased Later")
    task_id = await make_task(owner_pool, tenant.id)
    action = await propose(app_pool, tenant.id, task_id, ActionKind.product_create,
                           product_payload("TRAIL-7"))  # fmt: skip
    for statement in (
        "UPDATE action_audit SET event = 'approved' WHERE action_id = $1",
        "DELETE FROM action_audit WHERE action_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(app_pool, tenant.id) as conn:
                await conn.execute(statement, action.id)
        # Not even the owner, who bypasses RLS and holds every grant: the trigger refuses.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with owner_pool.acquire() as conn:
                await conn.execute(statement, action.id)
    assert await audit_events(owner_pool, action.id) == ["proposed"]

    async with owner_pool.acquire() as conn:
        await conn.execute("DELETE FROM tenants WHERE id = $1", tenant.id)
        assert await conn.fetchval(
            "SELECT count(*) FROM action_audit WHERE tenant_id = $1", tenant.id
        ) == 0  # fmt: skip


# --- Settling the task. --------------------------------------------------------------------------


async def task_state(owner: asyncpg.Pool, task_id: uuid.UUID) -> tuple[str, list[str]]:
    async with owner.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM tasks WHERE id = $1", task_id)
        events = await conn.fetch(
            "SELECT type FROM task_events WHERE task_id = $1 ORDER BY seq", task_id
        )
    return status, [row["type"] for row in events]


async def test_a_task_awaiting_approval_succeeds_when_its_last_action_is_decided(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id = await make_task(owner_pool, tenant_a.id)
    await owner_pool.execute(
        "UPDATE tasks SET input_tokens = 120, output_tokens = 30,"
        " webhook_url = 'https://hooks.example.com/opshub' WHERE id = $1",
        task_id,
    )
    first = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                          product_payload("TRAIL-8"))  # fmt: skip
    second = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("TRAIL-9"))  # fmt: skip
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        open_ = await actions_service.open_for_task(conn, tenant_id=tenant_a.id, task_id=task_id)
    assert [a.id for a in open_] == [first.id, second.id]

    await decide(app_pool, tenant_a.id, first.id, approve=False)
    assert await task_state(owner_pool, task_id) == ("awaiting_approval", ["action.rejected"])
    await decide(app_pool, tenant_a.id, second.id, approve=False)
    status, events = await task_state(owner_pool, task_id)
    assert status == "succeeded"
    assert events == ["action.rejected", "action.rejected", "task.succeeded"]
    async with owner_pool.acquire() as conn:
        task = await conn.fetchrow("SELECT result, finished_at FROM tasks WHERE id = $1", task_id)
        succeeded = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE event_type = 'task.succeeded'"
            " AND data->>'task_id' = $1",
            str(task_id),
        )
    assert task["result"] == "I proposed the product; it waits for your approval."
    assert task["finished_at"] is not None and succeeded == 1
    # Its watchers' last event carries the run's answer and usage, as a run's own end does.
    final = await owner_pool.fetchval(
        "SELECT data FROM task_events WHERE task_id = $1 AND type = 'task.succeeded'", task_id
    )
    assert final == {
        "text": "I proposed the product; it waits for your approval.",
        "usage": {"input_tokens": 120, "output_tokens": 30},
    }
    # And its webhook goes out now, not when the run ended.
    [hook] = await owner_pool.fetch(
        "SELECT tenant_id, url, body FROM webhook_deliveries WHERE task_id = $1", task_id
    )
    assert (hook["tenant_id"], hook["url"]) == (tenant_a.id, "https://hooks.example.com/opshub")
    assert hook["body"]["event"] == "task.succeeded"
    assert hook["body"]["task"]["status"] == "succeeded"


async def test_a_running_tasks_events_are_left_to_its_run(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    task_id = await make_task(owner_pool, tenant_a.id, status="running")
    action = await propose(app_pool, tenant_a.id, task_id, ActionKind.product_create,
                           product_payload("TRAIL-10"))  # fmt: skip
    await decide(app_pool, tenant_a.id, action.id, approve=False)
    # The worker numbers a running task's events; the run ends (and settles) by itself.
    assert await task_state(owner_pool, task_id) == ("running", [])
