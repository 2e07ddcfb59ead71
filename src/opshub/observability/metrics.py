"""The Prometheus metrics a runbook reads, from every opshub process.

Each process serves its own registry: the API at ``/metrics`` on its port, a worker or a scheduler
on ``OPSHUB_METRICS_PORT`` (Prometheus tells them apart by ``instance``). Labels stay bounded: crew,
provider, model family, billing, tool, action kind, outcome — never a tenant or a task id (the
tenant's view is the panels').
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from decimal import Decimal

import structlog
from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = structlog.get_logger(__name__)

TASKS = Counter(
    "opshub_tasks_total",
    "Tasks that ended a run, by crew, status and error code",
    ["crew", "status", "error"],
)
TASKS_SUBMITTED = Counter("opshub_tasks_submitted_total", "Tasks submitted", ["crew"])
RUN_DURATION = Histogram(
    "opshub_run_duration_seconds",
    "From a task's first start to its end, by crew",
    ["crew"],
    buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)
RUN_MODEL_CALLS = Histogram(
    "opshub_run_model_calls",
    "Model calls one run made (a run going round in circles makes many)",
    ["crew"],
    buckets=(1, 2, 3, 5, 8, 12, 20, 30, 50, 100),
)
QUEUE_DEPTH = Gauge("opshub_queue_depth", "Queued tasks due now, by priority", ["priority"])
QUEUE_OLDEST_AGE = Gauge(
    "opshub_queue_oldest_age_seconds",
    "How long the oldest task due now has waited, by priority",
    ["priority"],
)
MODEL_CALLS = Counter("opshub_model_calls_total", "Model calls", ["provider", "model", "billing"])
MODEL_ERRORS = Counter(
    "opshub_model_call_errors_total", "Model calls that failed", ["provider", "billing"]
)
MODEL_TOKENS = Counter(
    "opshub_model_tokens_total",
    "Tokens of model calls, by direction (input, output)",
    ["provider", "model", "billing", "direction"],
)
MODEL_COST = Counter(
    "opshub_model_cost_usd_total", "Cost of model calls in USD", ["provider", "model", "billing"]
)
TOOL_CALLS = Counter("opshub_tool_calls_total", "Tool calls by agents", ["tool"])
TOOL_ERRORS = Counter("opshub_tool_errors_total", "Tool calls that failed", ["tool"])
ACTIONS = Counter(
    "opshub_actions_total",
    "Actions by kind and outcome (proposed, executed, failed, retried)",
    ["kind", "outcome"],
)
CREDENTIAL_HEALTH = Gauge(
    "opshub_credentials", "Stored credentials by provider and health status", ["provider", "status"]
)
WEBHOOK_DELIVERIES = Counter(
    "opshub_webhook_deliveries_total",
    "Webhook delivery attempts, by result (delivered, failed)",
    ["result"],
)
SSE_SUBSCRIBERS = Gauge("opshub_sse_subscribers", "Live event streams open now")


def record_model_call(
    *,
    provider: str,
    model_family: str,
    billing: str,
    input_tokens: int,
    output_tokens: int,
    cost_usd: Decimal,
) -> None:
    labels = (provider, model_family, billing)
    MODEL_CALLS.labels(*labels).inc()
    MODEL_TOKENS.labels(*labels, "input").inc(input_tokens)
    MODEL_TOKENS.labels(*labels, "output").inc(output_tokens)
    MODEL_COST.labels(*labels).inc(float(cost_usd))


def serve_metrics(port: int | None) -> None:
    """A worker's or scheduler's ``/metrics`` (a daemon thread), when a port is configured."""
    if port is not None:
        start_http_server(port)
        log.info("metrics served", port=port)


async def counted_subscriber(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A live event stream, counted in ``opshub_sse_subscribers`` while it is open."""
    with SSE_SUBSCRIBERS.track_inprogress():
        async with aclosing(stream):  # type: ignore[type-var]
            async for chunk in stream:
                yield chunk
