"""Build a crew from its YAML: agents bound to the tenant's model and the run's tools, tasks in
the order written, each task's ``context`` naming the earlier tasks whose output it reads.

The four crews differ in prose and tools only, so one factory wires them all; a module per crew
would be four copies of this function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crewai import LLM, Agent, Crew, Process, Task
from crewai.tools import BaseTool
from crewai.utilities.task_output_storage_handler import TaskOutputStorageHandler

MAX_ITERATIONS = 8


def tool_names(definition: Mapping[str, Any]) -> list[str]:
    return [name for agent in definition["agents"].values() for name in agent["tools"]]


def build_crew(
    definition: Mapping[str, Any],
    *,
    llm: LLM,
    tools: Mapping[str, BaseTool],
    shared_tools: Sequence[BaseTool] = (),
    stream: bool = False,
) -> Crew:
    """``shared_tools`` (a tenant's MCP tools for the crew) go to every agent, after its own."""
    agents = {
        key: Agent(
            role=spec["role"],
            goal=spec["goal"],
            backstory=spec["backstory"],
            tools=[*(tools[name] for name in spec["tools"]), *shared_tools],
            llm=llm,
            allow_delegation=False,
            # Anthropic models would otherwise count tokens around every call.
            respect_context_window=False,
            max_iter=MAX_ITERATIONS,
            # The model SDK already retries what is worth retrying (429, 5xx, honouring
            # Retry-After); CrewAI running the whole task again on any error would call a key
            # the provider refused with 401 three times per run.
            max_retry_limit=0,
            verbose=False,
        )
        for key, spec in definition["agents"].items()
    }
    tasks: dict[str, Task] = {}
    for key, spec in definition["tasks"].items():
        tasks[key] = Task(
            description=spec["description"],
            expected_output=spec["expected_output"],
            agent=agents[spec["agent"]],
            context=[tasks[name] for name in spec.get("context", [])] or None,
        )
    crew = Crew(
        agents=list(agents.values()),
        tasks=list(tasks.values()),
        process=Process.sequential,
        stream=stream,
        verbose=False,
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
