"""Register, read and remove a tenant's MCP servers; their secrets go through the credential store.

A server's tools join the crews it names; tools listed as side-effecting are proposed as
actions, under the tenant's approval policies, instead of being called.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opshub.credentials.store import SecretStore, StoredRow
from opshub.crews.registry import CREWS
from opshub.db.sql import Connection, Record, load_queries
from opshub.mcp_servers.client import McpServer
from opshub.mcp_servers.errors import InvalidMcpServerError, McpServerNotFoundError
from opshub.mcp_servers.schemas import McpServerPut, McpServerRead
from opshub.outbound import is_internal_name

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def secret_path(name: str) -> str:
    """Where the store keeps the server's secret: under the server's own name."""
    return f"mcp-servers/{name}"


def _read(row: Record) -> McpServerRead:
    return McpServerRead(
        name=row["name"],
        url=row["url"],
        tools=row["tools"],
        crews=row["crews"],
        side_effecting_tools=row["side_effecting_tools"],
        has_secret=row["secret_version"] is not None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _refuse(field: str, message: str) -> InvalidMcpServerError:
    return InvalidMcpServerError(
        message, details={"fields": [{"loc": f"body.{field}", "message": message}]}
    )


def _check(body: McpServerPut, *, allow_internal_urls: bool) -> None:
    if not allow_internal_urls and is_internal_name(body.url.host or ""):
        raise _refuse("url", "the URL points at an internal address, which this hub does not call")
    unknown = sorted(set(body.crews) - set(CREWS))
    if unknown:
        raise _refuse("crews", f"there is no crew {', '.join(unknown)}")
    if body.tools is not None and not set(body.side_effecting_tools) <= set(body.tools):
        raise _refuse("side_effecting_tools", "a side-effecting tool must be one of tools")


async def list_mcp_servers(conn: Connection, *, tenant_id: uuid.UUID) -> list[McpServerRead]:
    return [_read(row) for row in await QUERIES["list_servers"].fetch(conn, tenant_id=tenant_id)]


async def get_mcp_server(conn: Connection, *, tenant_id: uuid.UUID, name: str) -> McpServerRead:
    row = await QUERIES["get_server"].fetchrow(conn, tenant_id=tenant_id, name=name)
    if row is None:
        raise McpServerNotFoundError("MCP server not found")
    return _read(row)


async def put_mcp_server(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    name: str,
    body: McpServerPut,
    store: SecretStore,
    allow_internal_urls: bool,
) -> tuple[McpServerRead, bool]:
    """The server as stored and whether it is new. A secret left out keeps the stored one."""
    _check(body, allow_internal_urls=allow_internal_urls)
    current = await QUERIES["lock_server"].fetchrow(conn, tenant_id=tenant_id, name=name)
    version = current["secret_version"] if current else None
    ciphertext = current["secret_ciphertext"] if current else None
    if "secret" in body.model_fields_set:
        if body.secret is None:
            version = ciphertext = None
        else:
            sealed = await store.seal(
                conn,
                tenant_id=tenant_id,
                provider=secret_path(name),
                secret={"token": body.secret},
                current_version=version,
            )
            version, ciphertext = sealed.version, sealed.ciphertext
    row = await QUERIES["upsert_server"].fetchone(
        conn,
        tenant_id=tenant_id,
        name=name,
        url=str(body.url),
        tools=body.tools,
        crews=body.crews,
        side_effecting_tools=body.side_effecting_tools,
        secret_version=version,
        secret_ciphertext=ciphertext,
    )
    return _read(row), bool(row["created"])


async def delete_mcp_server(
    conn: Connection, *, tenant_id: uuid.UUID, name: str, store: SecretStore
) -> None:
    row = await QUERIES["delete_server"].fetchrow(conn, tenant_id=tenant_id, name=name)
    if row is None:
        raise McpServerNotFoundError("MCP server not found")
    if row["secret_version"] is not None:
        await store.destroy(tenant_id=tenant_id, provider=secret_path(name))


async def open_secret(
    conn: Connection, *, tenant_id: uuid.UUID, row: Record, store: SecretStore
) -> str | None:
    """The server's bearer secret, for the run that calls it; None without one."""
    if row["secret_version"] is None:
        return None
    stored = StoredRow(
        tenant_id, secret_path(row["name"]), row["secret_version"], row["secret_ciphertext"]
    )
    secret: dict[str, Any] = await store.open(conn, stored)
    return str(secret["token"])


@dataclass(frozen=True)
class CrewServer:
    """A server registered for a crew, as one run uses it."""

    server: McpServer
    tools: frozenset[str] | None  # None: every tool the server lists
    side_effecting_tools: frozenset[str]


async def _server(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    row: Record,
    store: SecretStore,
    allow_internal_urls: bool,
) -> McpServer:
    return McpServer(
        name=row["name"],
        url=row["url"],
        secret=await open_secret(conn, tenant_id=tenant_id, row=row, store=store),
        allow_internal_urls=allow_internal_urls,
    )


async def for_crew(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    crew: str,
    store: SecretStore,
    allow_internal_urls: bool,
) -> list[CrewServer]:
    """The servers whose tools join ``crew``'s run, with their secrets opened."""
    rows = await QUERIES["servers_for_crew"].fetch(conn, tenant_id=tenant_id, crew=crew)
    return [
        CrewServer(
            server=await _server(
                conn,
                tenant_id=tenant_id,
                row=row,
                store=store,
                allow_internal_urls=allow_internal_urls,
            ),
            tools=frozenset(row["tools"]) if row["tools"] is not None else None,
            side_effecting_tools=frozenset(row["side_effecting_tools"]),
        )
        for row in rows
    ]


async def connection(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    name: str,
    store: SecretStore,
    allow_internal_urls: bool,
) -> McpServer:
    """The server as registered now, for executing an approved call to it."""
    row = await QUERIES["get_server"].fetchrow(conn, tenant_id=tenant_id, name=name)
    if row is None:
        raise McpServerNotFoundError(f"MCP server '{name}' is no longer registered")
    return await _server(
        conn,
        tenant_id=tenant_id,
        row=row,
        store=store,
        allow_internal_urls=allow_internal_urls,
    )
