"""A run's model calls belong to the agent that made them: its stored steps name the agent and
carry each call's tokens, cost and latency, and the agents panel sums them per agent."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from opshub.crews.registry import CREWS
from tests.conftest import TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.integration.runtime.conftest import store_openai_key, wait_for_status


def stored_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_model_calls_are_the_agents_own_with_their_tokens_cost_and_latency(
    hub_client: AsyncClient, tenant_a: TenantHandle, fake_llm: FakeLLMServer
) -> None:
    await store_openai_key(hub_client, tenant_a)
    fake_llm.script_openai(tool_calls=[("tenant_data", {"resource": "clients"})], usage=(50, 10))
    fake_llm.script_openai("Acme has no clients yet.", usage=(80, 12))
    response = await hub_client.post(
        "/v1/tasks",
        json={"crew": "assistant", "input": "How many clients do we have?"},
        headers=tenant_a.headers,
    )
    assert response.status_code == 202, response.text
    task = await wait_for_status(hub_client, tenant_a, response.json()["id"])
    assert task["status"] == "succeeded", task

    events = await hub_client.get(f"/v1/tasks/{task['id']}/events", headers=tenant_a.headers)
    calls = [event for event in stored_events(events.text) if event["type"] == "llm.call"]
    (agent,) = CREWS["assistant"].agents
    assert [call["agent"] for call in calls] == [agent.role, agent.role]
    assert [call["usage"] for call in calls] == [
        {"input_tokens": 50, "output_tokens": 10},
        {"input_tokens": 80, "output_tokens": 12},
    ]
    assert all(isinstance(call["latency_ms"], int) and call["latency_ms"] >= 0 for call in calls)
    costs = [Decimal(call["cost_usd"]) for call in calls]
    assert all(cost > 0 for cost in costs)
    assert sum(costs) == Decimal(task["usage"]["cost_usd"])  # priced as the ledger prices them

    panel = (await hub_client.get("/v1/panels/agents", headers=tenant_a.headers)).json()
    assistant = next(row for row in panel["crews"] if row["crew"] == "assistant")
    (row,) = assistant["agents"]
    assert (row["role"], row["model_calls"], row["tool_calls"]) == (agent.role, 2, 1)
    assert (row["input_tokens"], row["output_tokens"]) == (130, 22)
    assert Decimal(row["cost_usd"]) == sum(costs)
