"""The MCP server at /mcp through the MCP SDK's own client (API.md v1.1, "MCP").

A client with nothing but the URL and a key lists the tools, runs a crew to its answer with a
progress notification per step, reads the task and its trace; without a key, or with another
tenant's objects, it gets nothing; roles apply as in the REST API.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from httpx import AsyncClient
from mcp import ClientSession
from mcp.shared.exceptions import McpError
from mcp.types import CallToolResult, TextContent, TextResourceContents
from pydantic import AnyUrl

from opshub.auth.models import Role
from tests.api.test_actions_api import headers_for, proposed
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.mcp.conftest import Connect
from tests.integration.runtime.conftest import TERMINAL, store_openai_key

TOOLS = {
    "list_crews", "run_crew", "get_task", "cancel_task", "search_memory", "save_memory",
    "list_pending_approvals", "decide_approval",
}  # fmt: skip


def error_of(result: CallToolResult) -> dict[str, Any]:
    assert result.isError, result
    [content] = result.content
    assert isinstance(content, TextContent)
    error: dict[str, Any] = json.loads(content.text)["error"]
    return error


def data_of(result: CallToolResult) -> dict[str, Any]:
    assert not result.isError, result.content
    assert result.structuredContent is not None
    return result.structuredContent


async def test_a_client_with_a_key_lists_the_hubs_tools_and_crews(
    connect: Connect, tenant_a: TenantHandle
) -> None:
    async with connect(tenant_a.headers) as session:
        listed = await session.list_tools()
        assert {tool.name for tool in listed.tools} == TOOLS
        run = next(tool for tool in listed.tools if tool.name == "run_crew")
        assert run.inputSchema["required"] == ["input"]
        templates = await session.list_resource_templates()
        assert [t.uriTemplate for t in templates.resourceTemplates] == [
            "opshub://tasks/{task_id}/trace"
        ]

        crews = data_of(await session.call_tool("list_crews", {}))["result"]
    assert {"marketing", "analytics", "ecommerce", "operations"} <= {c["name"] for c in crews}


async def test_run_crew_reports_each_step_and_returns_the_answer(
    connect: Connect, hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_a)
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})], usage=(50, 10))
    fake_llm.script_openai("Acme has no clients yet.", usage=(80, 12))
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with connect(tenant_a.headers) as session:
        result = await session.call_tool(
            "run_crew",
            {"crew": "assistant", "input": "How many clients do we have?"},
            progress_callback=on_progress,
        )
        task = data_of(result)
        assert task["status"] == "succeeded", task
        assert task["result"] == "Acme has no clients yet."
        assert task["usage"]["input_tokens"] == 130

        messages = [message for _, message in progress]
        assert messages[0] == "task.started"
        assert messages[-1] == "task.succeeded"
        assert "tool.call: tenant_data" in messages
        values = [value for value, _ in progress]
        assert values == sorted(set(values)), "progress only ever grows"

        again = data_of(await session.call_tool("get_task", {"task_id": task["id"]}))
        assert again["status"] == "succeeded" and again["result"] == task["result"]

        trace = await session.read_resource(AnyUrl(f"opshub://tasks/{task['id']}/trace"))
    [contents] = trace.contents
    assert isinstance(contents, TextResourceContents)
    events = json.loads(contents.text)["events"]
    assert events[0]["type"] == "task.started" and events[-1]["type"] == "task.succeeded"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


async def poll(session: ClientSession, task_id: str, statuses: set[str]) -> dict[str, Any]:
    """get_task until the task reaches one of ``statuses``, as a client without progress would."""
    deadline = time.monotonic() + 30
    while (task := data_of(await session.call_tool("get_task", {"task_id": task_id})))[
        "status"
    ] not in statuses:
        assert time.monotonic() < deadline, f"the task stayed {task['status']}"
        await asyncio.sleep(0.05)
    return task


async def test_a_task_run_without_waiting_is_polled_and_cancelled(
    connect: Connect, hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_a)
    # Without the cancel, the tool's result would go back to the model in a second call.
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})], latency=1.5)
    fake_llm.script_openai("should never be asked for")
    async with connect(tenant_a.headers) as session:
        run = {"crew": "assistant", "input": "How many clients?", "wait_seconds": 0}
        task = data_of(await session.call_tool("run_crew", run))
        assert task["status"] == "queued"
        await poll(session, task["id"], {"running"})

        asked = data_of(await session.call_tool("cancel_task", {"task_id": task["id"]}))
        assert asked["id"] == task["id"]
        ended = await poll(session, task["id"], TERMINAL)
        assert ended["status"] == "cancelled" and ended["result"] is None
    assert fake_llm.pending("openai") >= 1  # the second answer was never asked for
    fake_llm.reset()


async def test_without_a_valid_key_the_endpoint_refuses(
    connect: Connect, hub_url: str, tenant_a: TenantHandle
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        },
    }
    stream = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        for headers, code in [
            ({}, "missing_credentials"),
            ({"Authorization": "Bearer ohk_not-a-key"}, "invalid_api_key"),
            ({"Authorization": "Bearer not-a-token"}, "invalid_token"),
        ]:
            response = await http.post(f"{hub_url}/mcp", json=initialize, headers=stream | headers)
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == code
            assert response.headers["www-authenticate"] == "Bearer"

        accepted = await http.post(
            f"{hub_url}/mcp", json=initialize, headers=stream | tenant_a.headers
        )
        assert accepted.status_code == 200

    with pytest.raises(BaseException) as refused:  # the SDK raises inside its task group
        async with connect({}) as session:
            await session.list_tools()
    assert "401" in repr(refused.value) or isinstance(refused.value, McpError)


async def test_another_tenants_task_is_not_found(
    connect: Connect, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    async with connect(tenant_a.headers) as session:
        task = data_of(await session.call_tool("run_crew", {"input": "Hello", "wait_seconds": 0}))
    async with connect(tenant_b.headers) as session:
        for tool in ("get_task", "cancel_task"):
            error = error_of(await session.call_tool(tool, {"task_id": task["id"]}))
            assert error["code"] == "not_found", (tool, error)
        with pytest.raises(McpError) as read:
            await session.read_resource(AnyUrl(f"opshub://tasks/{task['id']}/trace"))
        assert "not_found" in read.value.error.message
        missing = error_of(await session.call_tool("get_task", {"task_id": str(uuid.uuid4())}))
        assert missing["code"] == "not_found"


async def test_roles_apply_as_in_the_rest_api(
    connect: Connect,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    _, [first, second] = await proposed(app_pool, owner_pool, tenant_a, count=2)
    viewer = await headers_for(owner_pool, tenant_a, Role.viewer)
    member = await headers_for(owner_pool, tenant_a, Role.member)

    async with connect(viewer) as session:
        pending = data_of(await session.call_tool("list_pending_approvals", {}))
        assert {first, second} <= {item["id"] for item in pending["items"]}
        refused = error_of(await session.call_tool("run_crew", {"input": "Hello"}))
        assert refused["code"] == "forbidden"
        refused = error_of(await session.call_tool("save_memory", {"content": "We ship Fridays"}))
        assert refused["code"] == "forbidden"

    async with connect(member) as session:
        decision = {"action_id": first, "decision": "approve"}
        assert error_of(await session.call_tool("decide_approval", decision))["code"] == "forbidden"

    async with connect(tenant_b.headers) as session:
        other = error_of(await session.call_tool("decide_approval", decision))
        assert other["code"] == "not_found"

    async with connect(tenant_a.headers) as session:  # the owner
        approved = data_of(await session.call_tool("decide_approval", decision))
        assert approved["status"] == "approved"
        assert approved["decided_by"].startswith("api_key:")
        rejected = data_of(
            await session.call_tool(
                "decide_approval",
                {"action_id": second, "decision": "reject", "reason": "wrong price"},
            )
        )
        assert rejected["status"] == "rejected" and rejected["decision_reason"] == "wrong price"
        again = error_of(await session.call_tool("decide_approval", decision))
        assert again["code"] == "action_not_pending"


async def test_memory_saved_through_mcp_is_found_by_search(
    connect: Connect, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    async with connect(tenant_a.headers) as session:
        saved = data_of(
            await session.call_tool(
                "save_memory",
                {"content": "Acme ships orders on Fridays only", "subject": "shipping days"},
            )
        )
        assert saved["outcome"] == "created"
        found = data_of(
            await session.call_tool("search_memory", {"query": "when do we ship orders?"})
        )
        assert found["items"][0]["id"] == saved["memory"]["id"]
        invalid = error_of(await session.call_tool("save_memory", {"content": "   "}))
        assert invalid["code"] == "invalid_request"
    async with connect(tenant_b.headers) as session:
        other = data_of(await session.call_tool("search_memory", {"query": "shipping days"}))
    assert saved["memory"]["id"] not in {item["id"] for item in other["items"]}
