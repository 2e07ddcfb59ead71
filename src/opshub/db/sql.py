"""Named SQL blocks with named parameters, run on asyncpg connections.

A domain keeps its statements in a ``.sql`` file (``-- verb_noun --`` starts a block) and runs
each through the typed, keyword-only function of the module that owns the file. Parameters are
``:name`` in the SQL and keywords in Python, numbered for asyncpg once, when the file loads; a
call builds one list from its keywords and asyncpg's prepared-statement cache does the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias

import asyncpg

Connection: TypeAlias = asyncpg.Connection
Record: TypeAlias = asyncpg.Record


@dataclass(frozen=True, slots=True)
class Query:
    """One named SQL block, its ``:name`` parameters already numbered for asyncpg.

    Translated once when the file loads, so a call costs one list built from its keywords; a
    missing or unknown keyword fails before anything reaches the database.
    """

    name: str
    text: str
    """The statement as asyncpg takes it: ``$1``, ``$2`` … in the order of ``params``."""
    params: tuple[str, ...]
    source: str
    """The block as written (before any ``fill``)."""

    def fill(self, **slots: str) -> Query:
        """The block with its ``{slot}``s filled: identifiers, column lists or checked literals
        a statement cannot take as parameters (a table, a partial index's predicate), never a
        caller's values. Callers build each filled statement once and keep it."""
        filled = _translate(self.name, self.source.format_map(slots))
        return replace(filled, source=self.source)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        if len(values) != len(self.params) or not all(name in values for name in self.params):
            expected = ", ".join(self.params) or "none"
            raise TypeError(f"query {self.name} takes {expected}; got {', '.join(values)}")
        return [values[name] for name in self.params]

    async def fetch(self, conn: Connection, /, **params: Any) -> list[Record]:
        rows: list[Record] = await conn.fetch(self.text, *self.args(params))
        return rows

    async def fetchrow(self, conn: Connection, /, **params: Any) -> Record | None:
        row: Record | None = await conn.fetchrow(self.text, *self.args(params))
        return row

    async def fetchone(self, conn: Connection, /, **params: Any) -> Record:
        """The row a statement always returns (``INSERT … RETURNING``, a row held locked)."""
        row: Record | None = await conn.fetchrow(self.text, *self.args(params))
        if row is None:
            raise LookupError(f"query {self.name} returned no row")
        return row

    async def fetchval(self, conn: Connection, /, **params: Any) -> Any:
        return await conn.fetchval(self.text, *self.args(params))

    async def execute(self, conn: Connection, /, **params: Any) -> str:
        status: str = await conn.execute(self.text, *self.args(params))
        return status

    async def executemany(self, conn: Connection, rows: Iterable[Mapping[str, Any]], /) -> None:
        await conn.executemany(self.text, [self.args(row) for row in rows])


def load_queries(path: Path) -> Mapping[str, Query]:
    """Named SQL blocks from a ``.sql`` file: a ``-- name --`` line starts each block.

    Parameters are ``:name`` (a ``::type`` cast is not one); the first use of a name numbers
    it. A block that numbers its own (``$1``) is refused: callers pass keywords, never a list.
    """
    blocks: dict[str, str] = {}
    name = None
    for line in path.read_text().splitlines():
        header = _BLOCK.match(line)
        if header:
            name = header[1]
            blocks[name] = ""
        elif name and not line.startswith("--"):
            blocks[name] += line + "\n"
    return MappingProxyType({key: _translate(key, text.strip()) for key, text in blocks.items()})


def _translate(name: str, text: str) -> Query:
    params: list[str] = []

    def number(match: re.Match[str]) -> str:
        param = match[1]
        if param is None:
            if match[0].startswith("$"):
                raise ValueError(f"query {name} numbers its parameters ({match[0]}); name them")
            return match[0]  # a string literal, left as it is
        if param not in params:
            params.append(param)
        return f"${params.index(param) + 1}"

    return Query(name=name, text=_TOKEN.sub(number, text), params=tuple(params), source=text)


_BLOCK = re.compile(r"^-- (\w+) --$")
# String literals and quoted names are skipped whole; ``::`` casts never match a parameter.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\d+|(?<![:\w]):([A-Za-z_]\w*)")
