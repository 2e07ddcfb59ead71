"""A run's spans, following OpenTelemetry's GenAI conventions: task → crew → agent → each model
call → each tool call.

CrewAI hands its events to handlers in a thread pool, so a call's end may be handled before its
start. The handlers only note each step (under the run's ``RunTrace``, which the worker sets
before the run and CrewAI's handlers see through the copied context); the spans are made when the
run ends, with the steps' own timestamps and CrewAI's scope ids (``parent_event_id``,
``started_event_id``) for the tree. Prompts and completions go in only when the operator opts in
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``); error texts never do (a provider's
401 text quotes part of the key): only their kind.
"""

from __future__ import annotations

import os
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from opshub.crews.registry import CREWS
from opshub.llm import metering
from opshub.llm.crewai_setup import install_once
from opshub.observability.metrics import MODEL_ERRORS, TOOL_CALLS, TOOL_ERRORS
from opshub.observability.tracing import tracer

MAX_TEXT = 1_000
# The hub's own tools are metric labels by name; a tenant's MCP tools (names the tenant chooses)
# share one label, so no tenant can grow the metrics' series without bound. Spans keep the name.
HUB_TOOLS = frozenset(tool for crew in CREWS.values() for a in crew.agents for tool in a.tools)
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def capture_content() -> bool:
    return os.environ.get(CAPTURE_CONTENT, "").strip().lower() == "true"


def tool_label(name: str) -> str:
    return name if name in HUB_TOOLS else "mcp"


def trimmed(value: Any, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[:limit] + "…"


def _ns(moment: Any) -> int:
    return int(moment.timestamp() * 1e9) if moment is not None else time.time_ns()


@dataclass
class Step:
    event_id: str
    parent_id: str | None
    sequence: int
    name: str
    kind: SpanKind
    start_ns: int
    attributes: dict[str, Any]
    end_ns: int | None = None
    error: str | None = None
    spanned: bool = True
    agent: str | None = None
    """The CrewAI agent the step belongs to: its parent when the scope chain passes through
    events without spans (memory retrievals, reasoning)."""


@dataclass
class RunTrace:
    """The steps of one run, noted from CrewAI's handler threads."""

    crew: str | None = None
    steps: dict[str, Step] = field(default_factory=dict)
    ends: dict[str, tuple[int, dict[str, Any], str | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, event: Any, name: str, attributes: dict[str, Any], **options: Any) -> None:
        step = Step(
            event_id=event.event_id,
            parent_id=event.parent_event_id,
            sequence=event.emission_sequence or 0,
            name=name,
            kind=options.get("kind", SpanKind.INTERNAL),
            start_ns=_ns(event.timestamp),
            attributes=attributes,
            spanned=options.get("spanned", True),
            agent=options.get("agent"),
        )
        with self._lock:
            ended = self.ends.pop(step.event_id, None)
            if ended is not None:
                step.end_ns, more, step.error = ended
                step.attributes.update(more)
            self.steps[step.event_id] = step

    def end(self, event: Any, attributes: dict[str, Any], error: str | None = None) -> None:
        started = event.started_event_id
        if started is None:
            return
        end_ns = _ns(event.timestamp)
        with self._lock:
            step = self.steps.get(started)
            if step is None:  # its start is still in another handler thread
                self.ends[started] = (end_ns, attributes, error)
                return
            step.end_ns, step.error = end_ns, error
            step.attributes.update(attributes)

    def export(self, root: trace.Span) -> None:
        """The run's spans under ``root``, parents first (emitted before their children)."""
        with self._lock:
            steps = sorted(self.steps.values(), key=lambda s: s.sequence)
        made: dict[str, trace.Span] = {}
        parents = {step.event_id: step.parent_id for step in steps}
        agents = {s.agent: s.event_id for s in steps if s.agent and s.name.startswith("invoke_")}
        for step in steps:
            parent_id = step.parent_id
            while parent_id is not None and parent_id not in made:
                parent_id = parents.get(parent_id)
            if not step.spanned:
                continue
            if parent_id is None and step.agent in agents:
                parent_id = agents[step.agent]
            parent = made.get(parent_id) if parent_id is not None else None
            span = tracer().start_span(
                step.name,
                context=trace.set_span_in_context(parent or root),
                kind=step.kind,
                start_time=step.start_ns,
                attributes=step.attributes,
            )
            if step.error is not None:
                span.set_attribute("error.type", step.error)
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=step.end_ns or time.time_ns())
            made[step.event_id] = span


current_trace: ContextVar[RunTrace | None] = ContextVar("opshub_current_trace", default=None)


def _billing() -> tuple[str, str]:
    """The provider and payer of the run's model (its meter), for spans and metrics."""
    meter = metering.current_run.get()
    if meter is None:
        return "unknown", "unknown"
    return meter.provider, meter.billed_to.value


def _agent_id(agent: Any) -> str | None:
    agent_id = getattr(agent, "id", None)
    return str(agent_id) if agent_id is not None else None


def _error_kind(error: Any) -> str:
    return type(error).__name__ if isinstance(error, BaseException) else "error"


def _crew_started(_source: Any, event: Any) -> None:
    if (run := current_trace.get()) is not None:
        crew = run.crew or event.crew_name or "crew"
        attributes = {"gen_ai.operation.name": "invoke_workflow", "opshub.crew": crew}
        run.start(event, f"invoke_workflow {crew}", attributes)


def _crew_ended(_source: Any, event: Any) -> None:
    if (run := current_trace.get()) is not None:
        error = "crew_failed" if getattr(event, "error", None) else None
        run.end(event, {}, error)


def _scope_started(_source: Any, event: Any) -> None:
    """A CrewAI task: no span of its own; its agents hang under the crew."""
    if (run := current_trace.get()) is not None:
        run.start(event, "task", {}, spanned=False)


def _agent_started(_source: Any, event: Any) -> None:
    if (run := current_trace.get()) is not None:
        role = getattr(event.agent, "role", None) or "agent"
        llm = getattr(event.agent, "llm", None)
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": role,
            "gen_ai.request.model": getattr(llm, "model", None) or "unknown",
        }
        attributes["gen_ai.provider.name"] = _billing()[0]
        run.start(event, f"invoke_agent {role}", attributes, agent=_agent_id(event.agent))


def _agent_ended(_source: Any, event: Any) -> None:
    if (run := current_trace.get()) is not None:
        error = getattr(event, "error", None)
        run.end(event, {}, "agent_failed" if error else None)


def _llm_started(_source: Any, event: Any) -> None:
    if (run := current_trace.get()) is not None:
        model = event.model or "unknown"
        provider, billing = _billing()
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "opshub.billing": billing,
        }
        if capture_content() and event.messages is not None:
            attributes["gen_ai.input.messages"] = trimmed(event.messages, 8 * MAX_TEXT)
        run.start(event, f"chat {model}", attributes, kind=SpanKind.CLIENT, agent=event.agent_id)


def _llm_completed(_source: Any, event: Any) -> None:
    if (run := current_trace.get()) is not None:
        usage = event.usage or {}
        attributes: dict[str, Any] = {
            "gen_ai.usage.input_tokens": int(
                usage.get("prompt_tokens") or usage.get("input_tokens") or 0
            ),
            "gen_ai.usage.output_tokens": int(
                usage.get("completion_tokens") or usage.get("output_tokens") or 0
            ),
        }
        if event.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [str(event.finish_reason)]
        if event.response_id:
            attributes["gen_ai.response.id"] = event.response_id
        if capture_content():
            attributes["gen_ai.output.messages"] = trimmed(event.response, 8 * MAX_TEXT)
        run.end(event, attributes)


def _llm_failed(_source: Any, event: Any) -> None:
    MODEL_ERRORS.labels(*_billing()).inc()
    if (run := current_trace.get()) is not None:
        run.end(event, {}, "model_call_failed")


def _tool_started(_source: Any, event: Any) -> None:
    TOOL_CALLS.labels(tool_label(event.tool_name)).inc()
    if (run := current_trace.get()) is not None:
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": event.tool_name,
            "gen_ai.tool.call.arguments": trimmed(event.tool_args),
        }
        agent = event.agent_id or _agent_id(event.agent or event.from_agent)
        run.start(event, f"execute_tool {event.tool_name}", attributes, agent=agent)


def _tool_finished(_source: Any, event: Any) -> None:
    if (run := current_trace.get()) is not None:
        run.end(event, {"gen_ai.tool.call.result": trimmed(event.output)})


def _tool_failed(_source: Any, event: Any) -> None:
    TOOL_ERRORS.labels(tool_label(event.tool_name)).inc()
    if (run := current_trace.get()) is not None:
        run.end(event, {}, _error_kind(event.error))


def install() -> None:
    """Register the handlers with CrewAI's event bus once per process (CrewAI is imported)."""
    install_once("genai_spans", _register)


def _register() -> None:
    from crewai.events import crewai_event_bus
    from crewai.events.types.agent_events import (
        AgentExecutionCompletedEvent,
        AgentExecutionErrorEvent,
        AgentExecutionStartedEvent,
    )
    from crewai.events.types.crew_events import (
        CrewKickoffCompletedEvent,
        CrewKickoffFailedEvent,
        CrewKickoffStartedEvent,
    )
    from crewai.events.types.llm_events import (
        LLMCallCompletedEvent,
        LLMCallFailedEvent,
        LLMCallStartedEvent,
    )
    from crewai.events.types.task_events import TaskStartedEvent
    from crewai.events.types.tool_usage_events import (
        ToolUsageErrorEvent,
        ToolUsageFinishedEvent,
        ToolUsageStartedEvent,
    )

    for event_type, handler in (
        (CrewKickoffStartedEvent, _crew_started),
        (CrewKickoffCompletedEvent, _crew_ended),
        (CrewKickoffFailedEvent, _crew_ended),
        (TaskStartedEvent, _scope_started),
        (AgentExecutionStartedEvent, _agent_started),
        (AgentExecutionCompletedEvent, _agent_ended),
        (AgentExecutionErrorEvent, _agent_ended),
        (LLMCallStartedEvent, _llm_started),
        (LLMCallCompletedEvent, _llm_completed),
        (LLMCallFailedEvent, _llm_failed),
        (ToolUsageStartedEvent, _tool_started),
        (ToolUsageFinishedEvent, _tool_finished),
        (ToolUsageErrorEvent, _tool_failed),
    ):
        crewai_event_bus.on(event_type)(handler)
