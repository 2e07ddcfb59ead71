"""An OTLP/HTTP trace receiver, as a collector answers it: ``POST /v1/traces`` with an
``ExportTraceServiceRequest`` in protobuf (gzip or not), answered with an empty
``ExportTraceServiceResponse``. It keeps every span, and every raw body for secret searches."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

PROTOBUF = "application/x-protobuf"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _service(attributes: Any) -> str:
    return next((str(_value(a.value)) for a in attributes if a.key == "service.name"), "")


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    status_code: int
    start_ns: int
    end_ns: int


class FakeOtlpReceiver(BackgroundServer):
    name = "fake-otlp"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: list[ReceivedSpan] = []
        self.bodies: list[bytes] = []
        super().__init__(Starlette(routes=[Route("/v1/traces", self._export, methods=["POST"])]))

    async def _export(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        if request.headers.get("content-type") != PROTOBUF:
            return Response(status_code=415)
        export = ExportTraceServiceRequest()
        export.ParseFromString(raw)
        received = [
            ReceivedSpan(
                service=_service(resource_spans.resource.attributes),
                name=span.name,
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                kind=span.kind,
                attributes={a.key: _value(a.value) for a in span.attributes},
                links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                status_code=span.status.code,
                start_ns=span.start_time_unix_nano,
                end_ns=span.end_time_unix_nano,
            )
            for resource_spans in export.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self.bodies.append(raw)
            self.spans.extend(received)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)
