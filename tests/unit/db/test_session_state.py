"""The application pool does not reset a connection it gets back (``create_pool(...,
transactions_only=True)``): a setting that outlived its transaction would travel to the next user
of that connection, another tenant's request included. Every setting the queries make ends with
their transaction."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).parents[3] / "src" / "opshub"
SQL_FILES = sorted(SRC.rglob("*.sql"))
# set_config(name, value, is_local): the arguments, one level of parentheses allowed inside.
SET_CONFIG = re.compile(r"set_config\s*\(((?:[^()]|\([^()]*\))*)\)", re.IGNORECASE)
# SET [SESSION] a.setting = / TO: a session setting (an UPDATE's SET names no dotted column).
SESSION_SET = re.compile(r"\bSET\s+(?:SESSION\s+)?\w+\.\w+\s*(?:=|\bTO\b)", re.IGNORECASE)


def test_the_queries_are_found() -> None:
    assert {path.parent.name for path in SQL_FILES} >= {"db", "auth", "runtime", "memory"}


def test_every_setting_a_query_makes_ends_with_its_transaction() -> None:
    outliving = [
        f"{path.relative_to(SRC)}: {match.group(0)}"
        for path in SQL_FILES
        for match in SET_CONFIG.finditer(path.read_text())
        if match.group(1).rsplit(",", 1)[-1].strip().lower() != "true"
    ]
    assert outliving == []


def test_no_query_sets_a_session_setting() -> None:
    sessions = [
        f"{path.relative_to(SRC)}: {match.group(0)}"
        for path in SQL_FILES
        for match in SESSION_SET.finditer(path.read_text())
    ]
    assert sessions == []
