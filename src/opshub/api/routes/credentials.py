"""/v1/credentials: bring your own key. A secret goes in; only its fingerprint ever comes out."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response

from opshub.api.deps import AdminDep, AdminPrincipalDep, StateDep, ViewerDep
from opshub.api.state import AppState
from opshub.auth.models import Principal
from opshub.credentials import health
from opshub.credentials import service as credentials_service
from opshub.credentials.models import Provider
from opshub.credentials.schemas import CredentialPut, CredentialRead, CredentialSummary
from opshub.db.engine import tenant_transaction

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])


@router.get("", response_model=list[CredentialSummary])
async def list_credentials(ctx: ViewerDep, state: StateDep) -> list[CredentialSummary]:
    return await credentials_service.list_credentials(
        ctx.conn, tenant_id=ctx.principal.tenant_id, settings=state.settings
    )


@router.put("/{provider}", response_model=CredentialRead)
async def put_credential(
    principal: AdminPrincipalDep,
    state: StateDep,
    provider: Provider,
    body: CredentialPut,
    later: BackgroundTasks,
) -> CredentialRead:
    tenant_id = principal.tenant_id
    async with tenant_transaction(state.app_pool, tenant_id) as conn:
        await credentials_service.put_credential(
            conn,
            store=state.credential_store,
            tenant_id=tenant_id,
            provider=provider,
            secret=body.secret,
            label=body.label,
            allow_internal_urls=state.settings.allow_internal_urls,
            allowed_networks=state.settings.allowed_private_networks,
        )
    # Committed: other processes must not re-read the old key.
    later.add_task(state.resolver.changed, tenant_id=tenant_id, provider=provider)
    return await _check(principal, state, provider)


@router.post("/{provider}/check", response_model=CredentialRead)
async def check_credential(
    principal: AdminPrincipalDep, state: StateDep, provider: Provider
) -> CredentialRead:
    return await _check(principal, state, provider)


async def _check(principal: Principal, state: AppState, provider: Provider) -> CredentialRead:
    """The provider's answer is awaited holding no database connection, and a tenant has at
    most ``OPSHUB_TENANT_CREDENTIAL_CHECKS`` of them in flight."""
    async with state.outbound_checks.slot(principal.tenant_id):
        return await health.check_stored(
            state.app_pool,
            state.http,
            store=state.credential_store,
            settings=state.settings,
            tenant_id=principal.tenant_id,
            provider=provider,
        )


@router.delete("/{provider}", status_code=204)
async def delete_credential(
    ctx: AdminDep, state: StateDep, provider: Provider, later: BackgroundTasks
) -> Response:
    tenant_id = ctx.principal.tenant_id
    await credentials_service.delete_credential(
        ctx.conn, store=state.credential_store, tenant_id=tenant_id, provider=provider
    )
    later.add_task(state.resolver.changed, tenant_id=tenant_id, provider=provider)
    return Response(status_code=204)
