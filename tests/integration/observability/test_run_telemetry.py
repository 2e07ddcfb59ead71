"""An operator's view of one run: the API and a worker as processes of their own, configured by
the standard OTEL_* variables and exporting to an OTLP receiver on loopback, and scraped by
Prometheus' own parser."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opshub.db.engine import DatabaseUrls
from tests.conftest import REDIS_URL, TenantHandle
from tests.fakes.llm import FakeLLMServer
from tests.fakes.otlp import FakeOtlpReceiver, ReceivedSpan

# The worker runs under an audit hook that writes down every host it looks up or connects to,
# and every OTEL_* variable it sets in its own environment.
WORKER = """
import os, sys
seen = open(sys.argv[1], "a", buffering=1)
def hook(event, args):
    if event == "socket.getaddrinfo":
        seen.write(f"lookup {args[0]}\\n")
    elif event == "socket.connect":
        seen.write(f"connect {args[1]}\\n")
    elif event == "os.putenv" and os.fsdecode(args[0]).startswith("OTEL_"):
        seen.write(f"putenv {os.fsdecode(args[0])}\\n")
sys.addaudithook(hook)
sys.argv = ["opshub", "worker"]
from opshub.cli import main
main()
"""
CREWAI_TELEMETRY_HOST = "telemetry.crewai.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(check: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(url: str) -> Samples:
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def _moved(before: Samples, after: Samples) -> Callable[..., float]:
    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    return moved


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeOtlpReceiver]:
    with FakeOtlpReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def model_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default_text="Final answer from the fake model.") as server:
        yield server


@pytest.fixture(scope="module")
def hub_env(
    urls: DatabaseUrls, data_dir: Path, receiver: FakeOtlpReceiver, model_server: FakeLLMServer
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPSHUB_"))}
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        env.pop(name, None)
    env.update(
        OPSHUB_DATABASE_URL=urls.owner,
        OPSHUB_DATABASE_APP_URL=urls.app,
        OPSHUB_DATA_DIR=str(data_dir),
        OPSHUB_REDIS_URL=REDIS_URL,
        OPSHUB_OPENAI_BASE_URL=f"{model_server.base_url}/v1",
        OPSHUB_ALLOW_INTERNAL_URLS="true",
        OPSHUB_CREDENTIAL_CHECK_MINUTES="0",
        OPSHUB_LLM_MAX_RETRIES="0",
        OPSHUB_MEMORY_EXTRACTION="false",
        OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS="2",
        OPSHUB_LOG_JSON="true",
        OPSHUB_PROCESSES="1",  # the audit hook watches this one process
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.base_url,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="",
    )
    env.pop("OTEL_SERVICE_NAME")
    return env


@pytest.fixture(scope="module")
def api(
    hub_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    log = tmp_path_factory.mktemp("api") / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - the hub under test
            [sys.executable, "-m", "opshub", "api", "--port", str(port)],
            env=hub_env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _answers(f"{url}/healthz"), "the API", within=60)
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
async def queue_of_its_own(owner_pool: asyncpg.Pool) -> None:
    """The worker claims from the whole session database: a task an earlier test left queued or
    running would run in it while the test reads the process's counters (and take the model
    replies it scripted). Those tasks are cancelled before the worker starts."""
    await owner_pool.execute(
        "UPDATE tasks SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, "
        "finished_at = now() WHERE status IN ('queued', 'running')"
    )


@pytest.fixture(scope="module")
def worker(
    hub_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    queue_of_its_own: None,
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = _free_port()
    folder = tmp_path_factory.mktemp("worker")
    hosts = folder / "hosts.log"
    hosts.touch()
    with (folder / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - the hub under test
            [sys.executable, "-c", WORKER, str(hosts)],
            env={**hub_env, "OPSHUB_METRICS_PORT": str(port), "OPSHUB_WORKER_CONCURRENCY": "2"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        _wait_for(lambda: _answers(url), "the worker's metrics", within=90)
        yield process, url, hosts
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def _tree(spans: list[ReceivedSpan], parent: str = "", depth: int = 0) -> str:
    """The spans as an indented tree, for failure messages."""
    return "".join(
        "  " * depth + s.name + "\n" + _tree(spans, s.span_id, depth + 1)
        for s in spans
        if s.parent_span_id == parent
    )


def _one(spans: list[ReceivedSpan], prefix: str) -> ReceivedSpan:
    found = [s for s in spans if s.name.startswith(prefix)]
    assert len(found) == 1, (prefix, [s.name for s in spans])
    return found[0]


def test_a_run_is_traced_from_its_request_to_each_call_and_counted(
    api: tuple[str, Path],
    worker: tuple[subprocess.Popen[bytes], str, Path],
    receiver: FakeOtlpReceiver,
    model_server: FakeLLMServer,
    tenant_a: TenantHandle,
) -> None:
    api_url, api_log = api
    process, worker_metrics, hosts = worker
    before_api = _samples(f"{api_url}/metrics")
    before_worker = _samples(worker_metrics)
    openai_key = f"sk-trace-{secrets.token_hex(12)}"
    response = httpx.put(
        f"{api_url}/v1/credentials/openai",
        json={"secret": {"api_key": openai_key}},
        headers=tenant_a.headers,
    )
    assert response.status_code == 200, response.text
    model_server.script_openai(
        tool_calls=[("tenant_data", {"resource": "clients"})], usage=(50, 10)
    )
    model_server.script_openai("Acme has no clients yet.", usage=(80, 12))

    # The operator's proxy started a trace: the request's spans join it.
    client_trace = secrets.token_hex(16)
    response = httpx.post(
        f"{api_url}/v1/tasks",
        json={"crew": "assistant", "input": "How many clients do we have?"},
        headers={**tenant_a.headers, "traceparent": f"00-{client_trace}-{secrets.token_hex(8)}-01"},
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]

    def ended() -> bool:
        task = httpx.get(f"{api_url}/v1/tasks/{task_id}", headers=tenant_a.headers).json()
        return bool(task["status"] in {"succeeded", "failed", "cancelled"})

    _wait_for(ended, "the task", within=60)
    task = httpx.get(f"{api_url}/v1/tasks/{task_id}", headers=tenant_a.headers).json()
    assert task["status"] == "succeeded", task

    def run_spans() -> list[ReceivedSpan]:
        return [s for s in receiver.received() if s.attributes.get("opshub.task.id") == task_id]

    _wait_for(lambda: bool(run_spans()), "the run's root span")
    root = run_spans()[0]
    _wait_for(
        lambda: len([s for s in receiver.received() if s.trace_id == root.trace_id]) >= 6,
        "the run's spans",
    )
    spans = [s for s in receiver.received() if s.trace_id == root.trace_id]

    # The task is a trace of its own, linked to the request that submitted it.
    assert root.parent_span_id == ""
    assert root.service == "opshub-worker"
    assert root.name == "task assistant"
    assert root.attributes["opshub.tenant.id"] == str(tenant_a.id)
    assert root.attributes["opshub.crew"] == "assistant"
    assert root.attributes["opshub.task.status"] == "succeeded"
    request_spans = {s.span_id for s in receiver.received() if s.trace_id == client_trace}
    assert [link for link in root.links if link[0] == client_trace], root.links
    assert {link[1] for link in root.links} <= request_spans
    assert any(
        s.service == "opshub-api" and s.kind == 2
        for s in receiver.received()
        if s.trace_id == client_trace
    ), "no FastAPI server span in the request's trace"

    # task → crew → agent → model calls and the tool call.
    crew = _one(_children(spans, root), "invoke_workflow ")
    assert crew.name == "invoke_workflow assistant"
    agent = _one(_children(spans, crew), "invoke_agent ")
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    calls = [s for s in _children(spans, agent) if s.name.startswith("chat ")]
    assert len(calls) == 2, _tree(spans)
    for call in calls:
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.provider.name"] == "openai"
        assert call.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
        assert "gen_ai.input.messages" not in call.attributes  # not opted in
    usage = sorted(
        (c.attributes["gen_ai.usage.input_tokens"], c.attributes["gen_ai.usage.output_tokens"])
        for c in calls
    )
    assert usage == [(50, 10), (80, 12)]
    tool = _one(spans, "execute_tool ")
    assert tool.attributes["gen_ai.tool.name"] == "tenant_data"
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"resource": "clients"}
    ancestors, step = [], tool
    while step.parent_span_id:
        step = next(s for s in spans if s.span_id == step.parent_span_id)
        ancestors.append(step.span_id)
    assert agent.span_id in ancestors
    # The libraries' spans: the database, the model's HTTP calls, Redis (live events).
    assert any(s.attributes.get("db.system") == "postgresql" for s in spans)
    assert any(
        "http.request.method" in s.attributes or "http.method" in s.attributes for s in spans
    )
    assert any(s.attributes.get("db.system") == "redis" for s in receiver.received())

    # No secret in any export: the model key, the tenant's API key, a bearer header.
    for body in receiver.bodies:
        assert openai_key.encode() not in body
        assert tenant_a.api_key.encode() not in body

    # The API's access log line carries its request id and the request's trace id.
    lines = [json.loads(line) for line in api_log.read_text().splitlines() if line.startswith("{")]
    submitted = [
        line
        for line in lines
        if line.get("event") == "request"
        and line.get("path") == "/v1/tasks"
        and line.get("trace_id") == client_trace
    ]
    assert submitted and submitted[0]["request_id"] and submitted[0]["span_id"]

    # The counters moved, in the worker's and the API's exposition.
    worker_moved = _moved(before_worker, _samples(worker_metrics))
    api_moved = _moved(before_api, _samples(f"{api_url}/metrics"))
    assert worker_moved("opshub_tasks_total", crew="assistant", status="succeeded") == 1
    assert worker_moved("opshub_run_duration_seconds_count", crew="assistant") == 1
    calls = {"provider": "openai", "model": "gpt-4.1-mini", "billing": "byok"}
    assert worker_moved("opshub_model_calls_total", **calls) == 2
    assert worker_moved("opshub_model_tokens_total", **calls, direction="input") == 130
    assert worker_moved("opshub_tool_calls_total", tool="tenant_data") == 1
    assert worker_moved("opshub_db_pool_connections", pool="app", state="max") == 0
    assert _value(before_worker, "opshub_db_pool_connections", pool="app", state="max") > 0
    assert api_moved("opshub_tasks_submitted_total", crew="assistant") == 1
    assert api_moved("opshub_http_requests_total", route="/v1/tasks", status="202") == 1
    assert not [name for name, labels in before_worker if "tenant" in dict(labels)]

    # With OTEL_* set, the worker still stops at once, and CrewAI's host was never looked up.
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert time.monotonic() - started < 8
    seen = hosts.read_text()
    assert "lookup" in seen  # the hook heard the worker's own lookups
    assert CREWAI_TELEMETRY_HOST not in seen
    # CrewAI's telemetry is off by its own switch, not by switching off every SDK in the process.
    assert "putenv OTEL_SDK_DISABLED" not in seen
