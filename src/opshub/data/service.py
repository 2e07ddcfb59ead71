"""List, get, create, update, delete and bulk-import any tenant data resource.

Every function runs on a tenant-bound connection, where RLS already hides other tenants' rows;
the queries name the tenant as well, so they stay right on a connection that bypasses RLS and
the planner sees the tenant as a plain index condition.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, insert, or_, select, tuple_
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from opshub.data.resources import Resource
from opshub.errors import InvalidInputError, NotFoundError

MAX_PAGE = 200


def _read_columns(resource: Resource) -> list[Any]:
    return [resource.column(name) for name in resource.read.model_fields]


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidInputError(
            "the cursor is not one this API returned",
            details={"fields": [{"loc": "query.cursor", "message": "invalid cursor"}]},
        ) from exc


async def list_(
    conn: AsyncConnection,
    *,
    resource: Resource,
    tenant_id: uuid.UUID,
    filters: Mapping[str, Any],
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns (items, next cursor or None at the end)."""
    table = resource.table
    query = (
        select(*_read_columns(resource))
        .where(table.c.tenant_id == tenant_id)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
    )
    for name, value in filters.items():
        if value is not None:
            query = query.where(resource.column(name) == value)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(*(resource.column(c).ilike(pattern) for c in resource.searchable)))
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        query = query.where(tuple_(table.c.created_at, table.c.id) < tuple_(created_at, row_id))
    limit = max(1, min(limit, MAX_PAGE))
    rows = (await conn.execute(query.limit(limit + 1))).mappings().all()
    items = [dict(row) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
    )
    return items, next_cursor


def _one(resource: Resource, tenant_id: uuid.UUID, row_id: uuid.UUID) -> Any:
    return (resource.table.c.tenant_id == tenant_id) & (resource.table.c.id == row_id)


async def get_or_raise(
    conn: AsyncConnection, *, resource: Resource, tenant_id: uuid.UUID, row_id: uuid.UUID
) -> dict[str, Any]:
    query = select(*_read_columns(resource)).where(_one(resource, tenant_id, row_id))
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")
    return dict(row)


async def create(
    conn: AsyncConnection, *, resource: Resource, tenant_id: uuid.UUID, data: BaseModel
) -> dict[str, Any]:
    statement = (
        insert(resource.table)
        .values(**data.model_dump(), tenant_id=tenant_id)
        .returning(*_read_columns(resource))
    )
    row = await _write(conn, resource, statement)
    assert row is not None  # noqa: S101 - an INSERT … RETURNING always yields its row
    return row


async def update(
    conn: AsyncConnection,
    *,
    resource: Resource,
    tenant_id: uuid.UUID,
    row_id: uuid.UUID,
    data: BaseModel,
) -> dict[str, Any]:
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
        .where(_one(resource, tenant_id, row_id))
        .values(**values, updated_at=func.now())
        .returning(*_read_columns(resource))
    )
    row = await _write(conn, resource, statement)
    if row is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")
    return row


async def delete(
    conn: AsyncConnection, *, resource: Resource, tenant_id: uuid.UUID, row_id: uuid.UUID
) -> None:
    statement = sql_delete(resource.table).where(_one(resource, tenant_id, row_id))
    result = await conn.execute(statement.returning(resource.table.c.id))
    if result.first() is None:
        raise NotFoundError(f"no {resource.singular} with id {row_id}")


async def import_rows(
    conn: AsyncConnection,
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
            valid.append(
                {**resource.create.model_validate(raw).model_dump(), "tenant_id": tenant_id}
            )
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
    statement = insert(resource.table).returning(resource.table.c.id)
    result = await _execute(conn, resource, statement, valid)
    return [row.id for row in result]


def parse_csv(body: bytes, *, resource: Resource) -> list[dict[str, Any]]:
    """CSV with a header row; empty cells are absent and JSON-object columns hold JSON text."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the CSV is not UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text))
    unknown = set(reader.fieldnames or ()) - set(resource.create.model_fields)
    if unknown:
        raise InvalidInputError(
            f"unknown CSV columns for {resource.name}: {', '.join(sorted(unknown))}"
        )
    rows: list[dict[str, Any]] = []
    for record in reader:
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


async def _write(
    conn: AsyncConnection, resource: Resource, statement: Any
) -> dict[str, Any] | None:
    row = (await _execute(conn, resource, statement)).mappings().first()
    return dict(row) if row is not None else None


async def _execute(
    conn: AsyncConnection, resource: Resource, statement: Any, params: Any = None
) -> Any:
    # A failed statement aborts the transaction; the caller's transaction then rolls back whole.
    try:
        return await conn.execute(statement, params)
    except IntegrityError as exc:
        if "client" in str(exc.orig):
            raise InvalidInputError(
                "client_id does not name a client of this tenant",
                details={"fields": [{"loc": "body.client_id", "message": "unknown client"}]},
            ) from exc
        raise InvalidInputError(f"the {resource.singular} conflicts with stored data") from exc
