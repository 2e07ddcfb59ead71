"""A tenant's MCP tools in its crews' runs, against the SDK's own server on loopback: a read tool
is called and its answer reaches the result, only the listed tools are offered, a server that is
down leaves the run without its tools (and the events say so), and a side-effecting tool waits
for approval and is then called exactly once."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY

from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.fakes.mcp_tools_server import OrderDeskMcpServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status
from tests.integration.runtime.test_crews import submit, tool_results_seen, until

TOKEN = "desk-token-5f0c2a9b7e"


@pytest.fixture(scope="module")
def desk() -> Iterator[OrderDeskMcpServer]:
    with OrderDeskMcpServer(token=TOKEN) as server:
        yield server


async def register(client: AsyncClient, tenant: TenantHandle, name: str, url: str) -> None:
    body = {
        "url": url,
        "secret": TOKEN,
        "tools": ["lookup_order", "refund_order"],
        "crews": ["operations"],
        "side_effecting_tools": ["refund_order"],
    }
    response = await client.put(f"/v1/mcp-servers/{name}", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text


async def task_events(client: AsyncClient, tenant: TenantHandle, task_id: str) -> list[Any]:
    async with client.stream(
        "GET", f"/v1/tasks/{task_id}/events", headers=tenant.headers
    ) as stream:
        text = "".join([chunk async for chunk in stream.aiter_text()])
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def mcp_tool_calls() -> float:
    """Calls of tenants' MCP tools in the metrics: one label for all, whatever their names."""
    return REGISTRY.get_sample_value("opshub_tool_calls_total", {"tool": "mcp"}) or 0.0


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/mcp"


async def test_a_registered_read_tool_answers_the_crew_and_a_server_that_is_down_is_left_out(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    desk: OrderDeskMcpServer,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    await register(hub_client, tenant_a, "desk", desk.url)
    await register(hub_client, tenant_a, "gone", closed_port_url())
    before = len(fake_llm.requests_for("/v1/chat/completions"))
    metered = mcp_tool_calls()
    fake_llm.script_openai(tool_calls=[("desk_lookup_order", {"order_id": "1001"})])
    fake_llm.script_openai("Order 1001 shipped on 2026-12-01 to Lisbon.")

    task_id = await submit(hub_client, tenant_a, "operations", "Where is order 1001?")
    task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded", task
    assert "Lisbon" in task["result"]
    assert "shipped on 2026-12-01 to Lisbon" in tool_results_seen(fake_llm, before)
    assert desk.calls_of("lookup_order")[-1:] == [{"order_id": "1001"}]
    offered = {
        tool["function"]["name"]
        for tool in fake_llm.requests_for("/v1/chat/completions")[before].body["tools"]
    }
    assert {"desk_lookup_order", "desk_refund_order"} <= offered
    assert not any("delete_all_orders" in name or name.startswith("gone_") for name in offered)
    events = await task_events(hub_client, tenant_a, task_id)
    assert any(e["type"] == "tool.call" and e["tool"] == "desk_lookup_order" for e in events)
    [down] = [e for e in events if e.get("tool") == "mcp-servers/gone"]
    assert down["type"] == "tool.result" and "could not be reached" in down["error"]
    assert TOKEN not in json.dumps(events)
    await until(lambda: mcp_tool_calls() == metered + 1)


async def test_a_side_effecting_tool_waits_for_approval_and_is_then_called_exactly_once(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    desk: OrderDeskMcpServer,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    await register(hub_client, tenant_a, "desk", desk.url)
    refunds = len(desk.calls_of("refund_order"))
    arguments = {"order_id": "1001", "reason": "Arrived broken."}
    fake_llm.script_openai(tool_calls=[("desk_refund_order", arguments)])
    fake_llm.script_openai("The refund of order 1001 waits for your approval.")

    task_id = await submit(hub_client, tenant_a, "operations", "Refund order 1001, it broke.")
    task = await wait_for_status(hub_client, tenant_a, task_id, {"awaiting_approval", "failed"})

    assert task["status"] == "awaiting_approval", task
    [action] = task["pending_actions"]
    assert action["kind"] == "mcp.tool_call"
    assert action["payload"] == {"server": "desk", "tool": "refund_order", "arguments": arguments}
    assert len(desk.calls_of("refund_order")) == refunds  # nothing called before approval

    approved = await hub_client.post(
        f"/v1/actions/{action['id']}/approve", json={}, headers=tenant_a.headers
    )
    assert approved.status_code == 200, approved.text
    task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded", task
    assert desk.calls_of("refund_order")[refunds:] == [arguments]
    executed = await hub_client.get(f"/v1/actions/{action['id']}", headers=tenant_a.headers)
    assert executed.json()["status"] == "executed"
    assert executed.json()["outcome"]["result"] == "Refunded order 1001."


async def test_a_policy_approving_mcp_tool_calls_lets_the_call_run_without_a_person(
    hub_client: AsyncClient,
    tenant_a: TenantHandle,
    fake_llm: FakeLLMServer,
    desk: OrderDeskMcpServer,
) -> None:
    await store_openai_key(hub_client, tenant_a)
    await register(hub_client, tenant_a, "desk", desk.url)
    policy = {"rules": [{"kind": "mcp.tool_call", "auto_approve": True}]}
    set_policy = await hub_client.put("/v1/policies", json=policy, headers=tenant_a.headers)
    assert set_policy.status_code == 200, set_policy.text
    refunds = len(desk.calls_of("refund_order"))
    arguments = {"order_id": "1002", "reason": "Lost in transit."}
    fake_llm.script_openai(tool_calls=[("desk_refund_order", arguments)])
    fake_llm.script_openai("Order 1002 is being refunded.")

    task_id = await submit(hub_client, tenant_a, "operations", "Refund order 1002, it got lost.")
    task = await wait_for_status(hub_client, tenant_a, task_id)

    assert task["status"] == "succeeded", task
    [action] = (await hub_client.get("/v1/actions", headers=tenant_a.headers)).json()["items"]
    deadline = time.monotonic() + 20
    while action["status"] != "executed":
        assert action["status"] in ("approved", "executed") and time.monotonic() < deadline, action
        await asyncio.sleep(0.05)
        action = (
            await hub_client.get(f"/v1/actions/{action['id']}", headers=tenant_a.headers)
        ).json()
    assert action["decided_by"] == "policy"  # not a person
    assert desk.calls_of("refund_order")[refunds:] == [arguments]
