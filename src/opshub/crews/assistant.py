"""The built-in assistant crew: one agent that answers from the tenant's own records.

Prose lives in ``assistant.yaml``; this module only binds it to the tenant's model and tools.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from crewai import LLM, Agent, Crew, Process, Task
from crewai.utilities.task_output_storage_handler import TaskOutputStorageHandler

from opshub.memory.run_memory import TenantMemory
from opshub.memory.service import MemoryFilter
from opshub.tools.context import ToolContext
from opshub.tools.memory import SaveMemoryTool, SearchMemoryTool
from opshub.tools.tenant_data import TenantDataTool


@functools.cache
def _definition() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(Path(__file__).with_suffix(".yaml").read_text())
    return loaded


def build(
    *,
    llm: LLM,
    context: ToolContext,
    memory: TenantMemory,
    recall_from: MemoryFilter,
    stream: bool = False,
) -> Crew:
    spec = _definition()
    agent_spec, task_spec = spec["agents"]["assistant"], spec["tasks"]["answer"]
    tools = {
        "tenant_data": TenantDataTool(context=context),
        "search_memory": SearchMemoryTool(
            context=context, memory=memory, scopes_filter=recall_from
        ),
        "save_memory": SaveMemoryTool(context=context, memory=memory),
    }
    agent = Agent(
        role=agent_spec["role"],
        goal=agent_spec["goal"],
        backstory=agent_spec["backstory"],
        tools=[tools[name] for name in agent_spec["tools"]],
        llm=llm,
        allow_delegation=False,
        # Anthropic models would otherwise count tokens around every call.
        respect_context_window=False,
        max_iter=8,
        verbose=False,
    )
    task = Task(
        description=task_spec["description"],
        expected_output=task_spec["expected_output"],
        agent=agent,
    )
    crew = Crew(
        agents=[agent], tasks=[task], process=Process.sequential, stream=stream, verbose=False
    )
    crew._task_output_handler = NoTaskOutputs()
    return crew


class NoTaskOutputs(TaskOutputStorageHandler):
    """CrewAI keeps every kickoff's task outputs in a SQLite file for its replay command, one
    file for every tenant of the process. opshub stores outcomes itself, under RLS: keep none."""

    def __init__(self) -> None:
        pass

    def update(self, task_index: int, log: dict[str, Any]) -> None:
        pass

    def add(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def reset(self) -> None:
        pass

    def load(self) -> list[dict[str, Any]] | None:
        return None
