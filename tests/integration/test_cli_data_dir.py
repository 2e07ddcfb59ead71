"""Every ``opshub`` command finds the same hub, says where it is, and never meets an empty one:
admin commands before ``serve`` bring an embedded schema up; an external database that isn't
migrated gets "run `opshub migrate`"."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from opshub.db.engine import DatabaseUrls, dsn
from tests.integration.test_cli import OPSHUB


@pytest.fixture
def home() -> Iterator[Path]:
    # Short: the embedded server's unix socket lives under it (socket paths are capped).
    with tempfile.TemporaryDirectory(prefix="ohd-", dir="/tmp") as path:
        yield Path(path)


def opshub_in(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [*OPSHUB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSHUB_", "XDG_"))}
    env.update(OPSHUB_LOG_JSON="true", **extra)
    return env


def test_admin_commands_before_serve_use_one_hub_from_any_directory(home: Path) -> None:
    env = clean_env(XDG_DATA_HOME=str(home / "xdg"))
    first, second = home / "projects", home / "elsewhere"
    first.mkdir()
    second.mkdir()

    created = opshub_in(
        first, env, "tenants", "create", "Acme", "--owner-email", "o@acme.example.com",
        "--password", "s3cret-pass",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    tenant = re.search(r"tenant (\S+) \(Acme\) created", created.stdout)
    assert tenant is not None
    hub = home / "xdg" / "opshub"
    assert f"opshub data: {hub} (the user data directory" in created.stderr

    listed = opshub_in(second, env, "tenants", "list")
    assert listed.returncode == 0, listed.stderr
    assert tenant[1] in listed.stdout
    assert f"opshub data: {hub} " in listed.stderr
    assert not (first / ".opshub").exists() and not (second / ".opshub").exists()


def test_an_external_database_not_migrated_says_run_opshub_migrate(
    home: Path, fresh_database: DatabaseUrls
) -> None:
    env = clean_env(OPSHUB_DATABASE_URL=dsn(fresh_database.owner), OPSHUB_DATA_DIR=str(home))

    for command in (["tenants", "list"], ["credentials", "sweep"]):
        result = opshub_in(home, env, *command)
        assert result.returncode == 2, result.stdout
        assert "has no opshub schema yet" in result.stderr
        assert "run `opshub migrate`" in result.stderr
        assert "relation" not in result.stderr
