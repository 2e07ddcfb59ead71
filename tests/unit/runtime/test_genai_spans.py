"""A model call's span from CrewAI's events: whatever order the handler pool runs them in, and
with prompts and completions only when the operator opts in."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.fakes.otlp import FakeOtlpReceiver

# The completion is handled before the start, as CrewAI's handler pool may do.
RUN = """
from crewai.events.types.llm_events import (
    LLMCallCompletedEvent, LLMCallStartedEvent, LLMCallType,
)
from opshub.runtime import genai_spans as genai
from opshub.observability.tracing import configure_tracing, tracer

configure_tracing("worker")
run = genai.RunTrace()
genai.current_trace.set(run)
started = LLMCallStartedEvent(
    model="gpt-4.1-mini", call_id="c1",
    messages=[{"role": "user", "content": "What was our ROAS last week?"}],
)
started.emission_sequence = 1
ended = LLMCallCompletedEvent(
    model="gpt-4.1-mini", call_id="c1", response="ROAS was 3.2",
    call_type=LLMCallType.LLM_CALL, usage={"prompt_tokens": 7, "completion_tokens": 3},
)
ended.started_event_id = started.event_id
genai._llm_completed(None, ended)
genai._llm_started(None, started)
with tracer().start_as_current_span("task") as root:
    run.export(root)
"""


@pytest.fixture
def receiver() -> Iterator[FakeOtlpReceiver]:
    with FakeOtlpReceiver() as server:
        yield server


def _run(receiver: FakeOtlpReceiver, **env: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    subprocess.run(  # noqa: S603 - our own snippet
        [sys.executable, "-c", RUN],
        env={**base, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url, **env},
        capture_output=True,
        timeout=120,
        check=True,
    )


def test_a_call_ended_before_its_start_was_handled_is_one_span_under_the_run(
    receiver: FakeOtlpReceiver,
) -> None:
    _run(receiver)
    spans = {s.name: s for s in receiver.received()}
    call = spans["chat gpt-4.1-mini"]
    assert call.parent_span_id == spans["task"].span_id
    assert call.attributes["gen_ai.usage.input_tokens"] == 7
    assert call.attributes["gen_ai.usage.output_tokens"] == 3
    assert call.end_ns >= call.start_ns
    # Not opted in: no prompt, no completion, anywhere in the export.
    assert "gen_ai.input.messages" not in call.attributes
    assert not [b for b in receiver.bodies if b"ROAS" in b]


def test_prompts_and_completions_go_in_when_the_operator_opts_in(
    receiver: FakeOtlpReceiver,
) -> None:
    _run(receiver, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    call = next(s for s in receiver.received() if s.name == "chat gpt-4.1-mini")
    assert "What was our ROAS last week?" in call.attributes["gen_ai.input.messages"]
    assert "ROAS was 3.2" in call.attributes["gen_ai.output.messages"]
