"""A process's tracing and logs as its environment sets them up: nothing leaves without OTEL_*;
lines readable in a terminal and JSON otherwise, with trace ids and tracebacks."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.fakes.otlp import FakeOtlpReceiver

# A span and two log lines, as a worker makes them, then an orderly exit (which flushes exports).
PROCESS = """
import structlog
from opentelemetry import trace
from opshub.logging import configure_logging
from opshub.observability.tracing import configure_tracing, tracer

configure_logging()
print("on" if configure_tracing("worker") else "off")
log = structlog.get_logger("check")
with tracer().start_as_current_span("work"):
    log.info("inside a span")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
"""


# A connector's call whose URL carries a token, as Meta's Graph API takes it.
HTTP_CALL = """
import sys
import httpx
from opshub.observability.tracing import configure_tracing

configure_tracing("worker")
httpx.get(sys.argv[1] + "/v1/traces?access_token=EAAB-secret-token")
"""


def _run(
    env: dict[str, str], stderr: int = subprocess.PIPE, code: str = PROCESS, *args: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPSHUB_LOG"))}
    return subprocess.run(  # noqa: S603 - our own snippet
        [sys.executable, "-c", code, *args],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.fixture
def receiver() -> Iterator[FakeOtlpReceiver]:
    with FakeOtlpReceiver() as server:
        yield server


def test_nothing_is_exported_without_otel_variables(receiver: FakeOtlpReceiver) -> None:
    unset = _run({})
    assert unset.stdout.strip() == "off"
    # An exporter named "none" is the standard way to say no, even with an endpoint around.
    declined = _run(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url}
    )
    assert declined.stdout.strip() == "off"
    assert receiver.received() == []
    exported = _run({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url})
    assert exported.stdout.strip() == "on"
    assert [s.name for s in receiver.received()] == ["work"]
    assert receiver.received()[0].service == "opshub-worker"


def test_http_spans_keep_no_query_string(receiver: FakeOtlpReceiver) -> None:
    _run(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url},
        subprocess.PIPE,
        HTTP_CALL,
        receiver.base_url,
    )
    (call,) = [s for s in receiver.received() if s.kind == 3]  # the client span
    assert call.attributes["http.url"] == f"{receiver.base_url}/v1/traces"
    assert not [body for body in receiver.bodies if b"EAAB-secret-token" in body]


def test_piped_logs_are_json_with_trace_ids_and_tracebacks(receiver: FakeOtlpReceiver) -> None:
    done = _run({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url})
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    inside = next(line for line in lines if line["event"] == "inside a span")
    span = receiver.received()[0]
    assert (inside["trace_id"], inside["span_id"]) == (span.trace_id, span.span_id)
    failed = next(line for line in lines if line["event"] == "it failed")
    assert failed["level"] == "error"
    assert "Traceback" in failed["exception"] and "ValueError: boom" in failed["exception"]


def test_logs_in_a_terminal_are_readable_lines_with_the_traceback() -> None:
    primary, secondary = pty.openpty()
    try:
        _run({}, stderr=secondary)
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(primary)
    text = output.decode()
    assert "inside a span" in text and "it failed" in text
    assert not any(line.lstrip().startswith("{") for line in text.splitlines())
    assert "ValueError" in text and "boom" in text
