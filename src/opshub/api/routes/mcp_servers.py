"""/v1/mcp-servers: the MCP servers whose tools join a tenant's crews."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from opshub.api.deps import AdminDep, StateDep, ViewerDep
from opshub.mcp_servers import service as mcp_servers_service
from opshub.mcp_servers.schemas import NAME_PATTERN, McpServerPut, McpServerRead

router = APIRouter(prefix="/v1/mcp-servers", tags=["mcp servers"])
ServerName = Annotated[str, Path(pattern=NAME_PATTERN, description="The tenant's name for it.")]


@router.get("", response_model=list[McpServerRead])
async def list_mcp_servers(ctx: ViewerDep) -> list[McpServerRead]:
    return await mcp_servers_service.list_mcp_servers(ctx.conn, tenant_id=ctx.principal.tenant_id)


@router.get("/{name}", response_model=McpServerRead)
async def get_mcp_server(ctx: ViewerDep, name: ServerName) -> McpServerRead:
    return await mcp_servers_service.get_mcp_server(
        ctx.conn, tenant_id=ctx.principal.tenant_id, name=name
    )


@router.put("/{name}", response_model=McpServerRead)
async def put_mcp_server(
    ctx: AdminDep, state: StateDep, name: ServerName, body: McpServerPut, response: Response
) -> McpServerRead:
    """Register or replace the server (201 when new); its secret is never returned."""
    server, created = await mcp_servers_service.put_mcp_server(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        name=name,
        body=body,
        store=state.credential_store,
        allow_internal_urls=state.settings.allow_internal_urls,
    )
    if created:
        response.status_code = 201
    return server


@router.delete("/{name}", status_code=204)
async def delete_mcp_server(ctx: AdminDep, state: StateDep, name: ServerName) -> None:
    await mcp_servers_service.delete_mcp_server(
        ctx.conn, tenant_id=ctx.principal.tenant_id, name=name, store=state.credential_store
    )
