"""List, get, create, update, delete and bulk-import any tenant data resource.

Every function runs on a tenant-bound connection, where RLS already hides other tenants' rows;
the queries name the tenant as well, so they stay right on a connection that bypasses RLS and
the planner sees the tenant as a plain index condition.

Rows leave the database as JSON documents (``json_build_object``), which the API sends as they
are: a page of 50 rows costs no Python per row.
"""

from __future__ import annotations

import csv
import io
import json
import types
import typing
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel, ValidationError

from opshub.data.resources import RESOURCES, Resource
from opshub.db.cursor import decode_cursor, encode_cursor
from opshub.db.sql import Connection, load_queries
from opshub.errors import InvalidInputError, NotFoundError

MAX_PAGE = 200


def _types(model: type[BaseModel], name: str) -> tuple[Any, ...]:
    annotation = model.model_fields[name].annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _slots(resource: Resource) -> dict[str, str]:
    """What the resource puts into ``queries.sql``: its table, columns, read shape, filters."""
    pairs = []
    for name in resource.read.model_fields:
        # Money as text ("25.50"), as the OpenAPI says (a decimal), never a JSON float.
        value = f"{name}::text" if Decimal in _types(resource.read, name) else name
        pairs.append(f"'{name}', {value}")
    filters = "".join(
        f"\n  AND (:filter_{name}::{cast} IS NULL OR {name} = :filter_{name}::{cast})"
        for name in resource.filters
        for cast in ["uuid" if uuid.UUID in _types(resource.read, name) else "text"]
    )
    return {
        "table": resource.table,
        "columns": ", ".join(resource.create.model_fields),
        "document": f"json_build_object({', '.join(pairs)})::text",
        "filters": filters,
        "search": " OR ".join(f"{name} ILIKE :pattern" for name in resource.searchable),
    }


QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
STATEMENTS = {
    name: {block: query.fill(**_slots(resource)) for block, query in QUERIES.items()}
    for name, resource in RESOURCES.items()
}
"""Each resource's statements, filled in once."""


async def list_records(
    conn: Connection,
    *,
    resource: Resource,
    tenant_id: uuid.UUID,
    filters: Mapping[str, Any],
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[str], str | None]:
    """Newest first; returns (JSON documents, next cursor or None at the end)."""
    limit = max(1, min(limit, MAX_PAGE))
    pattern = None
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
    rows = await STATEMENTS[resource.name]["list_rows"].fetch(
        conn,
        tenant_id=tenant_id,
        pattern=pattern,
        cursor_created_at=after_at,
        cursor_id=after_id,
        limit=limit + 1,
        **{f"filter_{name}": filters.get(name) for name in resource.filters},
    )
    documents = [row["doc"] for row in rows[:limit]]
    if len(rows) <= limit:
        return documents, None
    last = rows[limit - 1]
    return documents, encode_cursor(last["created_at"], last["id"])


async def get_record(
    conn: Connection, *, resource: Resource, tenant_id: uuid.UUID, row_id: uuid.UUID
) -> str:
    document: str | None = await STATEMENTS[resource.name]["get_row"].fetchval(
        conn, tenant_id=tenant_id, row_id=row_id
    )
    if document is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")
    return document


async def create_record(
    conn: Connection, *, resource: Resource, tenant_id: uuid.UUID, data: BaseModel
) -> str:
    document: str = await _guarded(
        STATEMENTS[resource.name]["insert_row"].fetchval(
            conn, tenant_id=tenant_id, row=data.model_dump(mode="json")
        ),
        resource,
    )
    return document


async def update_record(
    conn: Connection,
    *,
    resource: Resource,
    tenant_id: uuid.UUID,
    row_id: uuid.UUID,
    data: BaseModel,
) -> str:
    patch = data.model_dump(mode="json", exclude_unset=True)
    required = [
        k for k, v in patch.items() if v is None and type(None) not in _types(resource.read, k)
    ]
    if required:
        raise InvalidInputError(
            "these fields can't be null",
            details={
                "fields": [{"loc": f"body.{k}", "message": "may not be null"} for k in required]
            },
        )
    document: str | None = await _guarded(
        STATEMENTS[resource.name]["update_row"].fetchval(
            conn, tenant_id=tenant_id, row_id=row_id, patch=patch
        ),
        resource,
    )
    if document is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")
    return document


async def delete_record(
    conn: Connection, *, resource: Resource, tenant_id: uuid.UUID, row_id: uuid.UUID
) -> None:
    deleted = await STATEMENTS[resource.name]["delete_row"].fetchval(
        conn, tenant_id=tenant_id, row_id=row_id
    )
    if deleted is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")


async def import_rows(
    conn: Connection,
    *,
    resource: Resource,
    tenant_id: uuid.UUID,
    rows: list[Mapping[str, Any]],
    max_rows: int,
) -> list[uuid.UUID]:
    """Validate every row first; insert all of them or, on any error, none."""
    if not rows:
        raise InvalidInputError("there are no rows to import")
    if len(rows) > max_rows:
        raise InvalidInputError(
            f"an import holds at most {max_rows} rows; this one has {len(rows)}"
        )
    valid: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(rows):
        try:
            model = resource.create.model_validate(raw)
            valid.append(model.model_dump(mode="json"))
        except ValidationError as exc:
            errors.extend(
                {"row": index, "loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()[:5]
            )
        if len(errors) >= 50:
            break
    if errors:
        raise InvalidInputError(
            "some rows are not valid; nothing was imported", details={"rows": errors}
        )
    inserted = await _guarded(
        STATEMENTS[resource.name]["import_rows"].fetch(conn, tenant_id=tenant_id, rows=valid),
        resource,
    )
    return [row["id"] for row in inserted]


def parse_csv(body: bytes, *, resource: Resource) -> list[dict[str, Any]]:
    """CSV with a header row; empty cells are absent and JSON-object columns hold JSON text."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the CSV is not UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:  # a header cell over the csv module's field limit, and the like
        raise InvalidInputError(f"the CSV header is not valid: {exc}") from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InvalidInputError(f"CSV columns appear more than once: {', '.join(repeated)}")
    unknown = set(header) - set(resource.create.model_fields)
    if unknown:
        raise InvalidInputError(
            f"unknown CSV columns for {resource.name}: {', '.join(sorted(unknown))}"
        )
    rows: list[dict[str, Any]] = []
    for number, record in enumerate(_records(reader)):
        if None in record:
            raise InvalidInputError(
                f"CSV row {number} has more cells than the header", details={"rows": [number]}
            )
        row: dict[str, Any] = {}
        for key, value in record.items():
            if not value:
                continue
            if value.startswith("{"):
                try:
                    row[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            row[key] = value
        rows.append(row)
    return rows


def _records(reader: csv.DictReader[str]) -> Iterator[dict[str | Any, str | Any]]:
    """The reader's rows; a row it can't read (a cell over 131,072 characters, a stray quote
    under strict rules) is the client's error, named by its number as the other row errors."""
    number = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInputError(
                f"CSV row {number} can't be read: {exc}",
                details={"rows": [{"row": number, "loc": "body", "message": str(exc)}]},
            ) from None
        yield record
        number += 1


# Rules that span stored and patched values live in the database as CHECK constraints.
_CHECKS = {
    "ck_campaigns_dates": ("end_date", "end_date is before start_date"),
    "ck_reports_period": ("period_end", "period_end is before period_start"),
}


async def _guarded(operation: Any, resource: Resource) -> Any:
    """Turn constraint violations into input errors; the transaction then rolls back whole."""
    try:
        return await operation
    except asyncpg.ForeignKeyViolationError as exc:
        if "client" in (exc.constraint_name or ""):
            raise InvalidInputError(
                "client_id does not name a client of this tenant",
                details={"fields": [{"loc": "body.client_id", "message": "unknown client"}]},
            ) from None
        raise InvalidInputError(f"the {resource.singular} refers to something unknown") from None
    except asyncpg.CheckViolationError as exc:
        field, message = _CHECKS.get(exc.constraint_name or "", ("body", "a value is out of range"))
        raise InvalidInputError(
            message, details={"fields": [{"loc": f"body.{field}", "message": message}]}
        ) from None
    except asyncpg.IntegrityConstraintViolationError:
        raise InvalidInputError(f"the {resource.singular} conflicts with stored data") from None
