"""Which data directory a command uses: OPSHUB_DATA_DIR, else ./.opshub where it exists (hubs
started there keep their data and keys), else the user's data directory (XDG)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opshub.config import Settings


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("OPSHUB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_a_local_hub_the_user_data_directory_is_used(elsewhere: Path) -> None:
    settings = Settings()
    assert settings.data_dir == elsewhere / "xdg" / "opshub"
    assert settings.data_dir_origin().startswith("the user data directory")


def test_an_existing_dot_opshub_is_kept(elsewhere: Path) -> None:
    (elsewhere / ".opshub").mkdir()
    settings = Settings()
    assert settings.data_dir == elsewhere / ".opshub"
    assert settings.data_dir_origin() == "./.opshub exists here"


def test_opshub_data_dir_wins_and_is_made_absolute(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (elsewhere / ".opshub").mkdir()
    monkeypatch.setenv("OPSHUB_DATA_DIR", "hubs/acme")
    settings = Settings()
    assert settings.data_dir == elsewhere / "hubs" / "acme"
    assert settings.data_dir_origin() == "OPSHUB_DATA_DIR"


def test_a_relative_xdg_data_home_is_ignored(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    monkeypatch.setenv("HOME", str(elsewhere / "home"))
    assert Settings().data_dir == elsewhere / "home" / ".local" / "share" / "opshub"
