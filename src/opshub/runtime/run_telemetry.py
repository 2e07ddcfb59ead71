"""A task's run as its trace's root span (linked to the request that submitted it), and its end
in the metrics: tasks by crew and status, run duration, model calls per run."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind

from opshub.db.sql import Record
from opshub.llm.metering import RunMeter
from opshub.observability.metrics import RUN_DURATION, RUN_MODEL_CALLS, TASKS
from opshub.observability.tracing import context_of, tracer
from opshub.runtime.genai_spans import RunTrace, current_trace


def _link(row: Record) -> list[Link]:
    carried = context_of(row["trace_context"])
    if carried is None:
        return []
    submitted = trace.get_current_span(carried).get_span_context()
    return [Link(submitted)] if submitted.is_valid else []


async def traced_run(row: Record, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` (a task's run) under a new trace whose root links to the submitting request:
    the queue may hold a task for long, and a trace per run keeps traces readable."""
    attributes = {
        "opshub.tenant.id": str(row["tenant_id"]),
        "opshub.task.id": str(row["id"]),
        "opshub.task.attempt": row["attempt"],
        "opshub.crew": row["crew"] or "routed",
    }
    with tracer().start_as_current_span(
        f"task {row['crew'] or 'routed'}",
        context=Context(),
        kind=SpanKind.CONSUMER,
        links=_link(row),
        attributes=attributes,
    ) as span:
        if not span.is_recording():
            await work
            return
        run = RunTrace()
        token = current_trace.set(run)
        try:
            await work
        finally:
            current_trace.reset(token)
            run.export(span)


def note_crew(crew: str) -> None:
    """The crew the run kicks off (a routed task learns it on the way)."""
    span = trace.get_current_span()
    span.set_attribute("opshub.crew", crew)
    span.update_name(f"task {crew}")
    if (run := current_trace.get()) is not None:
        run.crew = crew


def task_ended(
    finished: Record, *, status: str, error_code: str | None, meter: RunMeter | None
) -> None:
    crew = finished["crew"] or "routed"
    TASKS.labels(crew, status, error_code or "").inc()
    if finished["started_at"] is not None and finished["finished_at"] is not None:
        RUN_DURATION.labels(crew).observe(
            (finished["finished_at"] - finished["started_at"]).total_seconds()
        )
    if meter is not None:
        RUN_MODEL_CALLS.labels(crew).observe(len(meter.calls))
    span = trace.get_current_span()
    span.set_attribute("opshub.task.status", status)
    if error_code:
        span.set_attribute("error.type", error_code)
        span.set_status(trace.Status(trace.StatusCode.ERROR))


def task_retrying(row: Record, *, error_code: str) -> None:
    TASKS.labels(row["crew"] or "routed", "retrying", error_code).inc()
