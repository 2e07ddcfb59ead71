"""List, get, create, update, delete and bulk-import any tenant data resource.

Every function runs on a tenant-bound connection, where RLS already hides other tenants' rows;
the queries name the tenant as well, so they stay right on a connection that bypasses RLS and
the planner sees the tenant as a plain index condition.

Rows leave the database as JSON documents (``json_build_object``), which the API sends as they
are: a page of 50 rows costs no Python per row.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Numeric,
    Select,
    Text,
    TextClause,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.sql import ClauseElement

from opshub.data.resources import Resource
from opshub.db import sql
from opshub.db.cursor import decode_cursor, encode_cursor
from opshub.db.sql import Connection
from opshub.errors import InvalidInputError, NotFoundError

MAX_PAGE = 200


@functools.lru_cache(maxsize=16)
def _document(resource: Resource) -> ColumnElement[str]:
    """The read shape of a row as JSON text, built by the database."""
    pairs: list[Any] = []
    for name in resource.read.model_fields:
        column: ColumnElement[Any] = resource.column(name)
        if isinstance(column.type, Numeric):
            # Money as text ("25.50"), as the OpenAPI says (a decimal), never a JSON float.
            column = column.cast(Text)
        pairs += [literal_column(f"'{name}'"), column]
    return func.json_build_object(*pairs).cast(Text).label("doc")


@functools.lru_cache(maxsize=256)
def _list_statement(
    resource: Resource, filters: frozenset[str], search: bool, after_cursor: bool
) -> Select[Any]:
    """One statement per shape of list request, built once: values travel as bind parameters."""
    table = resource.table
    query = (
        select(_document(resource), table.c.created_at, table.c.id)
        .where(table.c.tenant_id == bindparam("tenant_id"))
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(bindparam("limit"))
    )
    for name in sorted(filters):
        query = query.where(resource.column(name) == bindparam(f"filter_{name}"))
    if search:
        pattern: BindParameter[str] = bindparam("pattern")
        query = query.where(or_(*(resource.column(c).ilike(pattern) for c in resource.searchable)))
    if after_cursor:
        position = tuple_(bindparam("cursor_created_at"), bindparam("cursor_id"))
        query = query.where(tuple_(table.c.created_at, table.c.id) < position)
    return query


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
    params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit + 1}
    used = frozenset(name for name, value in filters.items() if value is not None)
    params.update({f"filter_{name}": filters[name] for name in used})
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["pattern"] = f"%{escaped}%"
    if cursor:
        params["cursor_created_at"], params["cursor_id"] = decode_cursor(cursor)
    rows = await sql.fetch(conn, _list_statement(resource, used, bool(q), bool(cursor)), params)
    documents = [row["doc"] for row in rows[:limit]]
    if len(rows) <= limit:
        return documents, None
    last = rows[limit - 1]
    return documents, encode_cursor(last["created_at"], last["id"])


def _one(resource: Resource) -> ColumnElement[bool]:
    table = resource.table
    return (table.c.tenant_id == bindparam("tenant_id")) & (table.c.id == bindparam("row_id"))


@functools.lru_cache(maxsize=16)
def _get_statement(resource: Resource) -> Select[Any]:
    return select(_document(resource)).where(_one(resource))


@functools.lru_cache(maxsize=16)
def _delete_statement(resource: Resource) -> ClauseElement:
    return sql_delete(resource.table).where(_one(resource)).returning(resource.table.c.id)


async def get_record(
    conn: Connection, *, resource: Resource, tenant_id: uuid.UUID, row_id: uuid.UUID
) -> str:
    params = {"tenant_id": tenant_id, "row_id": row_id}
    document: str | None = await sql.fetchval(conn, _get_statement(resource), params)
    if document is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")
    return document


async def create_record(
    conn: Connection, *, resource: Resource, tenant_id: uuid.UUID, data: BaseModel
) -> str:
    statement = (
        insert(resource.table)
        .values(**data.model_dump(), tenant_id=tenant_id)
        .returning(_document(resource))
    )
    document: str = await _write(conn, resource, statement)
    return document


async def update_record(
    conn: Connection,
    *,
    resource: Resource,
    tenant_id: uuid.UUID,
    row_id: uuid.UUID,
    data: BaseModel,
) -> str:
    values = data.model_dump(exclude_unset=True)
    required = [k for k, v in values.items() if v is None and not resource.column(k).nullable]
    if required:
        raise InvalidInputError(
            "these fields can't be null",
            details={
                "fields": [{"loc": f"body.{k}", "message": "may not be null"} for k in required]
            },
        )
    statement = (
        sql_update(resource.table)
        .where(_one(resource))
        .values(**values, updated_at=func.now())
        .returning(_document(resource))
    )
    document: str | None = await _write(
        conn, resource, statement, {"tenant_id": tenant_id, "row_id": row_id}
    )
    if document is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")
    return document


async def delete_record(
    conn: Connection, *, resource: Resource, tenant_id: uuid.UUID, row_id: uuid.UUID
) -> None:
    params = {"tenant_id": tenant_id, "row_id": row_id}
    if await sql.fetchval(conn, _delete_statement(resource), params) is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")


@functools.lru_cache(maxsize=16)
def _import_statement(resource: Resource) -> TextClause:
    # One statement for the whole batch: the rows travel as one JSON array, and columns the
    # input leaves out keep their defaults.
    columns = ", ".join(["tenant_id", *resource.create.model_fields])
    table = resource.table.name
    return text(
        f"INSERT INTO {table} ({columns}) SELECT {columns} "  # noqa: S608 - our own identifiers
        f"FROM json_populate_recordset(NULL::{table}, :rows) RETURNING id"
    )


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
            valid.append({**model.model_dump(mode="json"), "tenant_id": str(tenant_id)})
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
    payload = orjson.dumps(valid).decode()
    inserted = await _guarded(
        sql.fetch(conn, _import_statement(resource), {"rows": payload}), resource
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


async def _write(
    conn: Connection, resource: Resource, statement: ClauseElement, params: Any = None
) -> Any:
    return await _guarded(sql.fetchval(conn, statement, params), resource)


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
