"""Actions in traces and metrics: a proposal as a span of the run that made it, an execution as
a span of its own (executors work outside any run), each outcome counted by kind."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from opshub.db.sql import Record
from opshub.observability.metrics import ACTIONS
from opshub.observability.tracing import tracer

OUTCOMES = {"record_executed": "executed", "record_failed": "failed", "retry_later": "retried"}


def action_proposed(row: Record) -> None:
    ACTIONS.labels(row["kind"], "proposed").inc()
    span = tracer().start_span(
        f"propose_action {row['kind']}",
        attributes={
            "opshub.action.id": str(row["id"]),
            "opshub.action.kind": row["kind"],
            "opshub.action.tool": row["tool"],
            "opshub.tenant.id": str(row["tenant_id"]),
        },
    )
    span.end()


async def traced_execution(row: Record, work: Coroutine[Any, Any, None]) -> None:
    with tracer().start_as_current_span(
        f"execute_action {row['kind']}",
        context=Context(),
        kind=SpanKind.CONSUMER,
        attributes={
            "opshub.action.id": str(row["id"]),
            "opshub.action.kind": row["kind"],
            "opshub.action.attempt": row["attempts"],
            "opshub.task.id": str(row["task_id"]),
            "opshub.tenant.id": str(row["tenant_id"]),
        },
    ):
        await work


def action_recorded(row: Record, recorded_by: str) -> None:
    """``recorded_by``: the name of the outcome's recording function."""
    outcome = OUTCOMES.get(recorded_by, recorded_by)
    ACTIONS.labels(row["kind"], outcome).inc()
    trace.get_current_span().set_attribute("opshub.action.outcome", outcome)
