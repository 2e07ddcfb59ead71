"""Traces: the OpenTelemetry SDK, set up from the standard ``OTEL_*`` variables only, or not at all.

Nothing is exported unless the operator asks: an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or an explicit ``OTEL_TRACES_EXPORTER``. The rest is the
SDK's own reading of the environment: service name and resource attributes, sampler, batch sizes,
headers, protocol (``http/protobuf`` unless ``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL=grpc``).
FastAPI, asyncpg, httpx and Redis get their spans from the kept instrumentation packages.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util._importlib_metadata import entry_points

log = structlog.get_logger(__name__)
TRACER = "opshub"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_URL_ATTRIBUTES = ("url.full", "http.url")
_lock = threading.Lock()
_provider: TracerProvider | None = None


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        return exporters.strip().lower() not in ("", "none")
    return any(environ.get(name) for name in _ENDPOINTS)


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    otlp = "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
    return [otlp if name == "otlp" else name for name in names if name != "none"]


def _exporter(name: str) -> SpanExporter:
    """The exporter registered under ``name``, as the SDK's own auto-configuration finds it."""
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    point = next(iter(found), None)
    if point is None:
        raise ValueError(f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed")
    exporter: SpanExporter = point.load()()
    return exporter


def configure_tracing(process: str) -> bool:
    """Install the tracer provider and the library instrumentations once per process, when the
    environment asks for traces. ``process``: api, worker or scheduler (the default service
    name is ``opshub-<process>``; ``OTEL_SERVICE_NAME`` overrides it). True when tracing is on."""
    global _provider
    with _lock:
        if _provider is not None:
            return True
        if not tracing_requested():
            return False
        resource = Resource.create(
            {"service.name": f"opshub-{process}", "opshub.process": process}
        ).merge(OTELResourceDetector().detect())
        provider = TracerProvider(resource=resource)
        for name in _exporter_names(os.environ):
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        trace.set_tracer_provider(provider)
        _instrument_libraries()
        _provider = provider
    log.info("tracing on", exporters=_exporter_names(os.environ))
    return True


def _without_query(span: trace.Span, request: Any) -> None:
    """Keep query strings out of spans: some APIs (Meta's Graph API) carry tokens in them."""
    if not span.is_recording():
        return
    url = urlsplit(str(getattr(request, "url", "")))
    bare = urlunsplit((url.scheme, url.netloc.rpartition("@")[2], url.path, "", ""))
    recorded = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        if key in recorded:
            span.set_attribute(key, bare)


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument(
        request_hook=_without_query, async_request_hook=_async_without_query
    )
    RedisInstrumentor().instrument()


async def _async_without_query(span: trace.Span, request: Any) -> None:
    _without_query(span, request)


def instrument_app(app: Any) -> None:
    """FastAPI's server spans (the parent of everything a request does), when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


_PROPAGATOR = TraceContextTextMapPropagator()


def trace_context() -> dict[str, str] | None:
    """The current span's W3C trace context, to carry across the queue (None when untraced).
    Only ``traceparent``/``tracestate``: a caller's baggage never reaches the task row."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier or None


def context_of(carrier: Mapping[str, str] | None) -> Context | None:
    """The span context a carried ``trace_context`` names, to link to."""
    if not carrier:
        return None
    return _PROPAGATOR.extract(dict(carrier))
