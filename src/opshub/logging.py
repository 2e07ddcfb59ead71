"""Logs: readable lines in a terminal, JSON otherwise; every line carries the request id bound for
the current request and the trace and span ids of the current span, errors their traceback."""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace


def add_trace_ids(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The ids of the span the line was logged in, as trace backends show them (hex)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = trace.format_trace_id(context.trace_id)
        event["span_id"] = trace.format_span_id(context.span_id)
    return event


_SHARED_PROCESSORS: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    add_trace_ids,
]


def _renderers(json: bool) -> list[structlog.typing.Processor]:
    if json:
        # The traceback as one string field: a log shipper keeps it with its line.
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    return [structlog.dev.ConsoleRenderer()]


def configure_logging(*, level: str = "INFO", json: bool | None = None) -> None:
    """``json``: None picks by the terminal (readable on a tty, JSON when piped or collected)."""
    if json is None:
        json = not sys.stderr.isatty()
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Library loggers (uvicorn, alembic, sqlalchemy) go through the same renderer.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(json)],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request's full URL at INFO, and some APIs (Meta's Graph API) carry the
    # access token in the query string: URLs must not reach the logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
