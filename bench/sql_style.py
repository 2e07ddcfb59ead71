"""What the named-parameter SQL style costs the queue's claim and the vector search.

Two questions, answered without a database: does PostgreSQL receive the same statements as at
an earlier commit (the blocks as loaded now against the blocks as they were then, parameter
numbers and whitespace aside), and what does ordering a call's keywords into asyncpg's list cost.

    .venv/bin/python bench/sql_style.py [--before 352b6b5]

Prints; the run of 2026-12-07 is in bench/results/sql-style-2026-12-07-same-statements.txt.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import timeit
import uuid
from pathlib import Path
from typing import Any

from opshub.db.sql import load_queries
from opshub.memory import indexes

ROOT = Path(__file__).resolve().parents[1]
HOT = {
    "src/opshub/runtime/queue.sql": [
        # The claim became one statement after that run (issue 20): compare it at its own commit.
        "claim_tasks",
    ],
    "src/opshub/memory/queries.sql": [
        "nearest_exact",
        "text_matches",
        "rows_by_id",
        "mark_recalled",
    ],
}


def _show(commit: str, path: str) -> str:
    command = ["git", "-C", str(ROOT), "show", f"{commit}:{path}"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _old_blocks(commit: str, path: str) -> dict[str, str]:
    blocks: dict[str, str] = {}
    name = None
    for line in _show(commit, path).splitlines():
        header = re.match(r"^-- (\w+) --$", line)
        if header:
            name = header[1]
            blocks[name] = ""
        elif name and not line.startswith("--"):
            blocks[name] += line + "\n"
    return blocks


def _same(a: str, b: str) -> bool:
    def norm(sql: str) -> str:
        return " ".join(re.sub(r"\$\d+", "$?", sql).split())

    return norm(a) == norm(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="352b6b5", help="the commit to compare with")
    args = parser.parse_args()
    for path, names in HOT.items():
        old, new = _old_blocks(args.before, path), load_queries(ROOT / path)
        for name in names:
            same = _same(old[name], new[name].text)
            print(f"{Path(path).parent.name}/{name}: same statement as before: {same}")
    tenant = uuid.uuid4()
    namespace: dict[str, Any] = {}
    exec(compile(_show(args.before, "src/opshub/memory/indexes.py"), "indexes", "exec"), namespace)  # noqa: S102 - our own file at an earlier commit
    model = "local/all-MiniLM-L6-v2"
    then = namespace["nearest_indexed_sql"](tenant, model, 100)
    now = indexes.nearest_indexed(tenant, model, 100).text
    print(f"memory/nearest_indexed: same statement as before: {_same(then, now)}")
    queue = load_queries(ROOT / "src/opshub/runtime/queue.sql")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("claim_tasks", {"worker_id": "w", "limit": 4, "lease_seconds": 30.0, "tenant_limit": 16}),
    ]
    for name, keywords in calls:
        query, number = queue[name], 200_000
        seconds = timeit.timeit(lambda q=query, k=keywords: q.args(k), number=number) / number
        print(f"{name} ({len(keywords)} named parameters): {seconds * 1e6:.2f} µs a call")


if __name__ == "__main__":
    main()
