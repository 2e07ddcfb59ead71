"""`opshub serve` on the embedded defaults runs a task end to end; `opshub run` shows it live."""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile

import httpx

from tests.fakes.llm import FakeLLMServer
from tests.integration.test_cli import OPSHUB, _free_port, _wait_ready, opshub


def test_serve_then_run_shows_the_steps_the_answer_and_the_cost() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="ohn-", dir="/tmp") as data_dir,
        FakeLLMServer() as fake,
    ):
        # No crew named: the chat router picks one first, with the tenant's model.
        fake.script_openai(
            '{"crew": "assistant", "question": null, "reason": "A question about leads."}',
            usage=(80, 10),
        )
        fake.script_openai(tool_calls=[("tenant_data", {"resource": "leads"})], usage=(120, 20))
        fake.script_openai("You have no leads yet: import some first.", usage=(200, 15))
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
            stored = httpx.put(
                f"{base}/v1/credentials/openai",
                json={"secret": {"api_key": "sk-runner-000000000000"}},
                headers={"Authorization": f"Bearer {api_key[0]}"},
            )
            assert stored.status_code == 200, stored.text

            run = opshub(
                {**env, "OPSHUB_URL": base, "OPSHUB_API_KEY": api_key[0], "COLUMNS": "200"},
                "run",
                "Which leads should we follow up?",
            )
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0

    assert run.returncode == 0, run.stderr
    assert "routed to the assistant crew" in run.stdout
    assert "→ tenant_data" in run.stdout
    assert "You have no leads yet" in run.stdout
    assert "succeeded · 400 input + 45 output tokens" in run.stdout
    assert all(
        r.api_key == "sk-runner-000000000000" for r in fake.requests_for("/v1/chat/completions")
    )


def test_run_without_an_api_key_says_how_to_get_one() -> None:
    result = opshub({"PATH": "/usr/bin:/bin"}, "run", "hello")
    assert result.returncode == 2
    assert "OPSHUB_API_KEY" in result.stderr
