"""A file of memories for ``opshub memory import``: what ``POST /v1/memories/import`` takes.

JSON: the API's body (``{"memories": [...]}``) or the bare list. CSV: a header row naming the
same fields; ``metadata`` and ``embedding`` cells hold JSON text, empty cells are left out. Every
row is checked before any is stored, so a file imports whole or not at all.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from pydantic import ValidationError

from opshub.errors import InvalidInputError
from opshub.memory.schemas import MAX_IMPORT_ITEMS, MemoryImportItem

JSON_CELLS = ("metadata", "embedding")


def read_import_file(body: bytes, *, csv_format: bool) -> list[MemoryImportItem]:
    rows = _csv_rows(body) if csv_format else _json_rows(body)
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_IMPORT_ITEMS:
        raise InvalidInputError(
            f"the file holds no list of 1 to {MAX_IMPORT_ITEMS:,} memories; nothing was imported"
        )
    items: list[MemoryImportItem] = []
    for number, row in enumerate(rows):
        try:
            items.append(MemoryImportItem.model_validate(row))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise InvalidInputError(
                f"row {number} ({field}): {error['msg']}; nothing was imported",
                details={"row": number, "loc": field},
            ) from None
        except InvalidInputError as exc:  # a check that names its own field (the scope's)
            raise InvalidInputError(
                f"row {number}: {exc.message}; nothing was imported", details={"row": number}
            ) from None
    return items


def _json_rows(body: bytes) -> Any:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"the file is not JSON: {exc}") from None
    if isinstance(document, dict) and set(document) == {"memories"}:
        return document["memories"]
    return document


def _csv_rows(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError("the CSV is not UTF-8") from None
    rows: list[dict[str, Any]] = []
    try:
        for number, record in enumerate(csv.DictReader(io.StringIO(text))):
            if None in record:
                raise InvalidInputError(f"CSV row {number} has more cells than the header")
            row: dict[str, Any] = {key: value for key, value in record.items() if value}
            for key in JSON_CELLS:
                if key in row:
                    try:
                        row[key] = orjson.loads(row[key])
                    except orjson.JSONDecodeError:
                        raise InvalidInputError(
                            f"CSV row {number} ({key}): not JSON text"
                        ) from None
            rows.append(row)
    except csv.Error as exc:
        raise InvalidInputError(f"the CSV can't be read: {exc}") from None
    return rows
