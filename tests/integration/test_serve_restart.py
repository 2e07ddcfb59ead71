"""Stopping `opshub serve` stops its embedded PostgreSQL; starting it again finds the same data."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path

import httpx

from tests.integration.test_cli import OPSHUB, _free_port, _wait_ready, opshub


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [*OPSHUB, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def test_stop_and_restart_keeps_the_data_and_leaves_no_server_behind() -> None:
    with tempfile.TemporaryDirectory(prefix="ohr-", dir="/tmp") as data_dir:
        env = {
            "PATH": "/usr/bin:/bin",
            "OPSHUB_DATA_DIR": data_dir,
            "OPSHUB_PORT": str(_free_port()),
        }
        base = f"http://127.0.0.1:{env['OPSHUB_PORT']}"
        postmaster_pid = Path(data_dir) / "pg" / "postmaster.pid"

        first = _start(env)
        try:  # a server that failed the test is stopped too, not left running
            _wait_ready(f"{base}/readyz", first)
            created = opshub(
                env,
                "tenants",
                "create",
                "Keeper",
                "--owner-email",
                "keeper@example.com",
                "--password",
                "s3cret-pass",
            )
        finally:
            first_stopped = _stop(first)
        assert created.returncode == 0, created.stderr
        assert first_stopped == 0
        assert not postmaster_pid.exists(), "the embedded PostgreSQL outlived opshub serve"

        second = _start(env)
        try:
            _wait_ready(f"{base}/readyz", second)
            login = httpx.post(
                f"{base}/v1/auth/token",
                json={"email": "keeper@example.com", "password": "s3cret-pass"},
            )
            assert login.status_code == 200
        finally:
            assert _stop(second) == 0
