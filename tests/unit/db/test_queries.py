"""The SQL style: named blocks, named parameters, and every call passing exactly the block's names.

Read off the source, so a misspelt or missing parameter fails here rather than on the path that
runs it; and a block nobody runs is dead SQL.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from opshub.db.sql import Query, load_queries

SRC = Path(__file__).parents[3] / "src" / "opshub"
METHODS = {"fetch", "fetchrow", "fetchval", "execute", "executemany"}


def _sql(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "queries.sql"
    path.write_text(text)
    return path


def test_named_parameters_are_numbered_once_in_order_of_first_use(tmp_path: Path) -> None:
    queries = load_queries(
        _sql(
            tmp_path,
            "-- finish --\n-- a comment: not :sql\n"
            "UPDATE t SET a = :status, b = :id::uuid, c = ':not_a_param', d = 'it''s :no'\n"
            "WHERE id = :id AND x = ANY(:ids::text[])\n",
        )
    )
    query = queries["finish"]
    assert query.params == ("status", "id", "ids")
    assert query.text == (
        "UPDATE t SET a = $1, b = $2::uuid, c = ':not_a_param', d = 'it''s :no'\n"
        "WHERE id = $2 AND x = ANY($3::text[])"
    )
    assert query.args({"ids": ["a"], "id": 7, "status": "done"}) == ["done", 7, ["a"]]


def test_a_call_must_pass_exactly_the_blocks_names(tmp_path: Path) -> None:
    query = load_queries(_sql(tmp_path, "-- get --\nSELECT :a, :b\n"))["get"]
    with pytest.raises(TypeError, match="takes a, b"):
        query.args({"a": 1})
    with pytest.raises(TypeError, match="takes a, b"):
        query.args({"a": 1, "b": 2, "c": 3})


def test_numbered_parameters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"numbers its parameters \(\$1\)"):
        load_queries(_sql(tmp_path, "-- get --\nSELECT * FROM t WHERE id = $1\n"))


def _resolve(module: Any, node: ast.expr) -> Mapping[str, Query] | None:
    """The blocks a ``QUERIES``-like expression of ``module`` names, if it names some."""
    if isinstance(node, ast.Subscript):  # one of several filled sets: STATEMENTS[resource]
        outer = _resolve(module, node.value)
        return next(iter(outer.values())) if outer else None  # type: ignore[arg-type]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        owner = getattr(module, node.value.id, None)
        found = getattr(owner, node.attr, None)
    elif isinstance(node, ast.Name):
        found = getattr(module, node.id, None)
    else:
        return None
    return found if isinstance(found, Mapping) and found else None


def _row_keys(rows: ast.expr) -> set[str] | None:
    """The keys of ``executemany``'s rows, when they are written out as a dict literal."""
    if isinstance(rows, ast.ListComp) and isinstance(rows.elt, ast.Dict):
        keys = rows.elt.keys
        if all(isinstance(k, ast.Constant) for k in keys):
            return {k.value for k in keys}  # type: ignore[union-attr]
    return None


def _uses() -> list[tuple[Path, int, Query, set[str] | None]]:
    """Every use of a block in the package: the block, and for a call the keywords passed
    (None when they come from a ``**mapping``, or for a use that is not a call)."""
    found: list[tuple[Path, int, Query, set[str] | None]] = []
    for path in sorted(SRC.rglob("*.py")):
        source = path.read_text()
        if "QUERIES" not in source:
            continue
        module = importlib.import_module(
            ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        )
        tree = ast.parse(source)
        calls = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "executemany":
                    calls[id(node.func.value)] = _row_keys(node.args[1])
                elif node.func.attr in METHODS:
                    spread = any(k.arg is None for k in node.keywords)
                    names = {k.arg for k in node.keywords if k.arg is not None}
                    calls[id(node.func.value)] = None if spread else names
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)):
                continue
            blocks = _resolve(module, node.value)
            if blocks is None or not isinstance(next(iter(blocks.values())), Query):
                continue
            query = blocks[node.slice.value]
            found.append((path, node.lineno, query, calls.get(id(node))))
    return found


USES = _uses()


def test_every_call_passes_the_parameters_its_block_names() -> None:
    wrong = [
        f"{path.relative_to(SRC)}:{line} {query.name}: {sorted(names)} ≠ {sorted(query.params)}"
        for path, line, query, names in USES
        if names is not None and names != set(query.params)
    ]
    assert not wrong, "\n".join(wrong)


# Statements that are not the application's: Alembic's runner and role provisioning, the
# embedded server's set-up through psql, LangGraph's checkpoint schema (beside the migrations).
NOT_APPLICATION = {"db/migrate.py", "db/embedded.py", "db/checkpoints.py"}


def test_no_statement_text_is_written_outside_the_sql_files() -> None:
    written = [
        f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(node)[:80]}"
        for path in sorted(SRC.rglob("*.py"))
        if "migrations" not in path.parts and str(path.relative_to(SRC)) not in NOT_APPLICATION
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in METHODS
        and node.args
        and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp))
    ]
    assert not written, "\n".join(written)


def test_every_block_is_run_somewhere() -> None:
    used = {(query.name, query.source) for _, _, query, _ in USES}
    unused = [
        f"{sql.relative_to(SRC)}: {name}"
        for sql in sorted(SRC.rglob("*.sql"))
        for name, query in load_queries(sql).items()
        if (name, query.source) not in used
    ]
    assert not unused, unused
