"""Everything a crew's run is built from: its YAML, the tenant's model, the run's tools (with the
tenant's connector credentials, and the tools of the MCP servers it registered for the crew), the
recalled memories and the thread's history."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from crewai import LLM, Crew
from crewai.tools import BaseTool

from opshub.agents.factory import build_crew, tool_names
from opshub.crews.registry import definition
from opshub.db.sql import Record
from opshub.memory.run_memory import TenantMemory, recall_for_run, run_scopes
from opshub.memory.service import MemoryFilter
from opshub.runtime.run_telemetry import note_crew
from opshub.runtime.task_events import RunEvents
from opshub.tools.context import Connectors, ToolContext
from opshub.tools.mcp import crew_mcp_tools
from opshub.tools.toolbox import RunTools, build_tools


@dataclass(frozen=True)
class CrewRun:
    crew: Crew
    inputs: dict[str, Any]


async def prepare(
    row: Record,
    *,
    crew_name: str,
    llm: LLM,
    memory: TenantMemory,
    app_pool: asyncpg.Pool,
    connectors: Connectors,
    events: RunEvents,
    history: str,
    memory_tokens: int,
    stream: bool,
) -> CrewRun:
    tenant_id: uuid.UUID = row["tenant_id"]
    note_crew(crew_name)
    scopes = run_scopes(crew_name, row["thread_id"])
    context = ToolContext(
        tenant_id=tenant_id,
        app_pool=app_pool,
        loop=asyncio.get_running_loop(),
        task_id=row["id"],
        connectors=connectors,
        emit=events.emit,
    )
    spec = definition(crew_name)
    run_tools = RunTools(
        context=context,
        memory=memory,
        recall_from=MemoryFilter(scopes=scopes),
        author=f"opshub {crew_name} crew",
    )

    def build(shared: list[BaseTool]) -> Crew:
        tools = build_tools(tool_names(spec), run_tools)
        return build_crew(spec, llm=llm, tools=tools, shared_tools=shared, stream=stream)

    async def crew_with_mcp_tools() -> Crew:
        shared = await crew_mcp_tools(context, crew=crew_name)
        # Building agents and tools is pydantic-heavy CPU work: off the worker's loop.
        return await asyncio.to_thread(build, shared)

    # The servers answer and the crew is built while the recall waits on its embedding and query.
    crew, memories = await asyncio.gather(
        crew_with_mcp_tools(),
        recall_for_run(memory, request=row["input"], scopes=scopes, token_budget=memory_tokens),
    )
    inputs = {
        **row["inputs"],
        "input": row["input"],
        "history": history,
        "memories": memories,
        "today": datetime.now(UTC).date().isoformat(),
    }
    return CrewRun(crew=crew, inputs=inputs)
