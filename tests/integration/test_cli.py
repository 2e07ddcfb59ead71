"""The ``opshub`` command as a user runs it: real processes on an embedded server of their own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

OPSHUB = [sys.executable, "-m", "opshub"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cli_env() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="ohc-", dir="/tmp") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")}
        env.update(OPSHUB_DATA_DIR=data_dir, OPSHUB_PORT=str(_free_port()), OPSHUB_LOG_JSON="true")
        yield env


def opshub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [*OPSHUB, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


# A first start from an empty data directory (initdb, migrations) took up to 219 s on the shared
# machine at load ~25; only a server that never answers waits the whole of it.
def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "opshub serve exited before it was ready"
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture(scope="module")
def served(cli_env: dict[str, str]) -> Iterator[str]:
    """`opshub serve` started from an empty data directory."""
    assert not any(Path(cli_env["OPSHUB_DATA_DIR"]).iterdir())
    process = subprocess.Popen(  # noqa: S603
        [*OPSHUB, "serve"], env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{cli_env['OPSHUB_PORT']}"
    try:
        _wait_ready(f"{base}/readyz", process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_serve_from_an_empty_data_dir_answers_readyz(served: str) -> None:
    body = httpx.get(f"{served}/readyz").json()
    assert body == {"status": "ready", "checks": {"database": "ok", "loops": "ok"}}


def test_tenant_created_by_the_cli_can_call_the_api(cli_env: dict[str, str], served: str) -> None:
    result = opshub(
        cli_env,
        "tenants",
        "create",
        "Acme",
        "--owner-email",
        "owner@acme.example.com",
        "--password",
        "s3cret-pass",
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.split("API key (shown once): ")[1].strip()
    assert key.startswith("ohk_")
    response = httpx.post(
        f"{served}/v1/data/clients",
        json={"name": "Summit Gear"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201
    token = httpx.post(
        f"{served}/v1/auth/token",
        json={"email": "owner@acme.example.com", "password": "s3cret-pass"},
    )
    assert token.status_code == 200
    listed = opshub(cli_env, "tenants", "list")
    assert "Acme" in listed.stdout


def test_a_key_revoked_by_the_cli_stops_working(cli_env: dict[str, str], served: str) -> None:
    created = opshub(
        cli_env,
        "tenants",
        "create",
        "Revokers",
        "--owner-email",
        "r@rev.example.com",
        "--password",
        "s3cret-pass",
    )
    tenant_id = created.stdout.split()[1]
    made = opshub(cli_env, "keys", "create", "--tenant", tenant_id, "--role", "viewer")
    assert made.returncode == 0, made.stderr
    key_id = made.stdout.split()[1]
    key = made.stdout.split("API key (shown once): ")[1].strip()
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{served}/v1/data/leads", headers=headers).status_code == 200
    assert opshub(cli_env, "keys", "revoke", key_id).returncode == 0
    assert httpx.get(f"{served}/v1/data/leads", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("tenants", "create", "X", "--owner-email", "not-an-email", "--password", "longenough"),
            "is not an e-mail address",
        ),
        (
            ("tenants", "create", "X", "--owner-email", "x@x.example.com", "--password", "short"),
            "at least 8 characters",
        ),
        (("keys", "create", "--tenant", "nope"), "is not a tenant id"),
        (("keys", "create", "--tenant", "00000000-0000-0000-0000-000000000000"), "no tenant"),
        (("keys", "revoke", "00000000-0000-0000-0000-000000000000"), "no such API key"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    cli_env: dict[str, str], served: str, args: tuple[str, ...], message: str
) -> None:
    result = opshub(cli_env, *args)
    assert result.returncode != 0
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert "Traceback" not in result.stderr


def test_duplicate_owner_email_is_refused_and_creates_no_tenant(
    cli_env: dict[str, str], served: str
) -> None:
    args = (
        "tenants",
        "create",
        "Dup",
        "--owner-email",
        "dup@dup.example.com",
        "--password",
        "s3cret-pass",
    )
    assert opshub(cli_env, *args).returncode == 0
    again = opshub(cli_env, *args)
    assert again.returncode == 2 and "already exists" in again.stderr
    names = [line.split()[-1] for line in opshub(cli_env, "tenants", "list").stdout.splitlines()]
    assert names.count("Dup") == 1
