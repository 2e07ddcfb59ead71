"""`opshub serve` on the embedded defaults runs a task end to end; `opshub run` shows it live,
exits with the task's status, and Ctrl-C cancels the task instead of leaving it running.

The tests read and set up the hub through ``opshub.client``, as the commands themselves do."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version

import pytest

from opshub.client import Client, calls
from opshub.tasks.models import TaskStatus
from tests.fakes.llm import FakeLLMServer
from tests.integration.test_cli import OPSHUB, _free_port, _wait_ready, opshub


@dataclass(frozen=True)
class Hub:
    base: str
    env: dict[str, str]  # what `opshub run` needs: the hub's URL and a tenant's API key
    fake: FakeLLMServer

    def client(self) -> Client:
        return Client(self.base, self.env["OPSHUB_API_KEY"])


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    with (
        tempfile.TemporaryDirectory(prefix="ohn-", dir="/tmp") as data_dir,
        FakeLLMServer() as fake,
    ):
        env = {
            "PATH": "/usr/bin:/bin",
            "OPSHUB_DATA_DIR": data_dir,
            "OPSHUB_PORT": str(_free_port()),
            "OPSHUB_OPENAI_BASE_URL": f"{fake.base_url}/v1",
            "OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS": "2",
            "OPSHUB_CREDENTIAL_CHECK_MINUTES": "0",
            "OPSHUB_MEMORY_EXTRACTION": "false",  # the tokens shown are the crew's own
        }
        base = f"http://127.0.0.1:{env['OPSHUB_PORT']}"
        server = subprocess.Popen(  # noqa: S603 - our own CLI
            [*OPSHUB, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_ready(f"{base}/readyz", server)
            created = opshub(
                env, "tenants", "create", "Runner", "--owner-email", "run@example.com",
                "--password", "s3cret-pass",
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            api_key = re.search(r"ohk_\S+", created.stdout)
            assert api_key is not None
            with Client(base, api_key[0]) as client:
                client.send(
                    calls.put_credential("openai", secret={"api_key": "sk-runner-000000000000"})
                )
            run_env = {**env, "OPSHUB_URL": base, "OPSHUB_API_KEY": api_key[0], "COLUMNS": "200"}
            yield Hub(base, run_env, fake)
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0


def test_serve_then_run_shows_the_steps_the_answer_and_the_cost(hub: Hub) -> None:
    # No crew named: the chat router picks one first, with the tenant's model.
    hub.fake.script_openai(
        '{"crew": "assistant", "question": null, "reason": "A question about leads."}',
        usage=(80, 10),
    )
    hub.fake.script_openai(tool_calls=[("tenant_data", {"resource": "leads"})], usage=(120, 20))
    hub.fake.script_openai("You have no leads yet: import some first.", usage=(200, 15))
    # The module's other tests call the same fake, with other keys, in whatever order they ran.
    earlier = len(hub.fake.requests_for("/v1/chat/completions"))

    run = opshub(hub.env, "run", "Which leads should we follow up?")

    assert run.returncode == 0, run.stderr
    assert "routed to the assistant crew" in run.stdout
    assert "→ tenant_data" in run.stdout
    assert "You have no leads yet" in run.stdout
    assert "succeeded · 400 input + 45 output tokens" in run.stdout
    calls = hub.fake.requests_for("/v1/chat/completions")[earlier:]
    assert calls and all(r.api_key == "sk-runner-000000000000" for r in calls)
    task_id = re.search(r"task (\S+)", run.stdout)
    assert task_id is not None
    shown = opshub(hub.env, "tasks", "show", task_id[1], "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"status": "succeeded"' in shown.stdout


def test_interrupting_run_cancels_the_task(hub: Hub) -> None:
    # A run that keeps calling a tool, a second a model call, until it is stopped.
    hub.fake.script_openai(
        tool_calls=[("tenant_data", {"resource": "leads"})], latency=1.0, times=30
    )
    run = subprocess.Popen(  # noqa: S603 - our own CLI, without a terminal
        [*OPSHUB, "run", "Go through every lead.", "--crew", "assistant"],
        env=hub.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        task_id = wait_for_running_task(hub)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
        hub.fake.reset()

    assert run.returncode == 3, err
    assert "cancelling the task" in out
    with hub.client() as client:
        assert client.send(calls.get_task(task_id)).status is TaskStatus.cancelled


def wait_for_running_task(hub: Hub, within: float = 60) -> str:
    deadline = time.monotonic() + within
    with hub.client() as client:
        while time.monotonic() < deadline:
            running = client.send(calls.list_tasks(status="running")).items
            if running:
                return str(running[0].id)
            time.sleep(0.1)
    raise AssertionError("the run never started")


def test_approving_an_unknown_action_reaches_the_hub_and_says_not_found(hub: Hub) -> None:
    decided = opshub(hub.env, "actions", "approve", str(uuid.uuid4()), "--reason", "fine")

    assert decided.returncode == 2, decided.stdout
    # The hub's own answer for the action, not a route that doesn't exist.
    assert "not_found: action not found" in decided.stderr


def test_version_and_exit_codes_of_usage_errors() -> None:
    shown = opshub({"PATH": "/usr/bin:/bin"}, "--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"opshub {version('opshub')}"

    result = opshub({"PATH": "/usr/bin:/bin"}, "run", "hello")
    assert result.returncode == 2
    assert "OPSHUB_API_KEY" in result.stderr


def put_openai_key(hub: Hub, api_key: str) -> subprocess.CompletedProcess[str]:
    """``opshub credentials put openai``, the secret on standard input as a user pipes it."""
    return subprocess.run(  # noqa: S603 - our own CLI
        [*OPSHUB, "credentials", "put", "openai"],
        input=json.dumps({"api_key": api_key}),
        env=hub.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_refused_key_is_stored_and_said_loudly_by_credentials_put(hub: Hub) -> None:
    hub.fake.valid_keys = {"sk-runner-000000000000"}
    try:
        put = put_openai_key(hub, "sk-revoked-key-11112222")
    finally:
        hub.fake.reset()
        # The module's other tests run on the tenant's key: put it back in place of the refused.
        restored = put_openai_key(hub, "sk-runner-000000000000")
        assert restored.returncode == 0, restored.stderr

    assert put.returncode == 1, put.stderr
    assert "openai stored" in put.stdout
    assert "INVALID: the provider refused the credential (401): Incorrect API key" in put.stderr
    assert "sk-revoked-key-11112222" not in put.stdout + put.stderr
