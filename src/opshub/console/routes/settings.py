"""Settings: model keys, the model per crew, schedules and API keys. Each form is parsed with the
API's request schema and handed to the API's own service, so it is refused as the API refuses it
(same codes), the refusal shown next to its field; a viewer sees every section, changes none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opshub.actions import policies as policies_service
from opshub.actions.kinds import ActionKind
from opshub.actions.schemas import PoliciesPut
from opshub.api.deps import StateDep
from opshub.auth.models import Role
from opshub.console.deps import FormDep, Page, PageDep, SignedInDep
from opshub.console.forms import FormErrors, domain_errors, parse
from opshub.console.render import page
from opshub.credentials import health
from opshub.credentials import service as credentials_service
from opshub.credentials.models import MODEL_PROVIDERS, Provider, Source
from opshub.credentials.schemas import CredentialPut
from opshub.crews import service as crews_service
from opshub.crews.registry import CREWS
from opshub.crews.schemas import CrewSettingsPut
from opshub.errors import DomainError
from opshub.memory import service as memory_service
from opshub.memory.models import Scope
from opshub.schedules import service as schedules_service
from opshub.schedules.cron import next_fire, parse_zone
from opshub.schedules.schemas import ScheduleCreate, ScheduleUpdate
from opshub.tenants import service as tenants_service
from opshub.tenants.schemas import ApiKeyCreate

router = APIRouter(prefix="/console/settings")
SECTION = "/console/settings"
NEXT_FIRINGS = 3
SCHEDULE_HISTORY = 5
MEMORIES_SHOWN = 20


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def settings(request: Request, ctx: PageDep, state: StateDep) -> HTMLResponse:
    return await _page(request, ctx, state)


async def _page(
    request: Request,
    ctx: Page,
    state: StateDep,
    *,
    form: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    created_key: Any = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The whole page; a refused form comes back filled in with its errors (422)."""
    tenant_id = ctx.principal.tenant_id
    summaries = await credentials_service.list_credentials(
        ctx.conn, tenant_id=tenant_id, settings=state.settings
    )
    keys = []
    for summary in summaries:
        if summary.provider not in MODEL_PROVIDERS:
            continue
        detail = None
        if summary.source is Source.byok:
            stored = await credentials_service.get_credential(
                ctx.conn, tenant_id=tenant_id, provider=summary.provider
            )
            detail = stored.status_detail
        keys.append({"summary": summary, "detail": detail})
    schedules = []
    now = datetime.now(UTC)
    for schedule in await schedules_service.list_schedules(ctx.conn, tenant_id=tenant_id):
        runs, _ = await schedules_service.list_runs(
            ctx.conn,
            tenant_id=tenant_id,
            schedule_id=schedule.id,
            cursor=None,
            limit=SCHEDULE_HISTORY,
        )
        schedules.append(
            {
                "schedule": schedule,
                "next": _firings(schedule.cron, schedule.timezone, now) if schedule.enabled else [],
                "runs": runs,
            }
        )
    return page(
        request,
        "settings.html",
        ctx,
        status_code=status_code,
        keys=keys,
        check=request.query_params.get("check", ""),
        crews=await crews_service.list_crews(ctx.conn, tenant_id=tenant_id),
        crew_names=list(CREWS),
        schedules=schedules,
        api_keys=await tenants_service.list_api_keys(ctx.conn) if ctx.can_decide else [],
        roles=[role.value for role in Role if ctx.principal.role.at_least(role)],
        kinds=[kind.value for kind in ActionKind],
        policies={
            rule.kind.value: rule
            for rule in (await policies_service.get_policies(ctx.conn, tenant_id=tenant_id)).rules
        },
        memory=await _memories(request, ctx, state),
        form=form,
        errors=errors or {},
        values=values or {},
        created_key=created_key,
    )


async def _memories(request: Request, ctx: Page, state: StateDep) -> dict[str, Any]:
    """As GET /v1/memories: a search when there is a query, else the newest; a bad scope is
    shown under the scope field."""
    query = request.query_params.get("memory_query", "").strip()[:2_000]
    scope = request.query_params.get("memory_scope", "").strip()[:210]
    found: dict[str, Any] = {"query": query, "scope": scope, "found": [], "error": None}
    try:
        where = memory_service.MemoryFilter(
            scopes=[Scope.parse(scope)] if scope else None, kinds=None
        )
    except DomainError as exc:
        found["error"] = f"{exc.message} ({exc.code})"
        return found
    tenant_id = ctx.principal.tenant_id
    if query:
        found["found"] = await memory_service.search(
            ctx.conn,
            tenant_id=tenant_id,
            embedders=state.embedders,
            query=query,
            limit=MEMORIES_SHOWN,
            where=where,
            ef_search=state.settings.memory_ef_search,
        )
    else:
        found["found"] = await memory_service.recent(
            ctx.conn, tenant_id=tenant_id, limit=MEMORIES_SHOWN, where=where
        )
    return found


def _firings(cron: str, timezone: str, after: datetime) -> list[datetime]:
    firings: list[datetime] = []
    for _ in range(NEXT_FIRINGS):
        after = next_fire(cron, parse_zone(timezone), after)
        firings.append(after)
    return firings


async def _refused(
    request: Request,
    ctx: Page,
    state: StateDep,
    form: str,
    errors: FormErrors,
    values: dict[str, Any],
) -> HTMLResponse:
    return await _page(
        request, ctx, state, form=form, errors=errors.fields, values=values, status_code=422
    )


# --- model keys -------------------------------------------------------------------------------


@router.post("/keys", include_in_schema=False)
async def put_key(
    request: Request, ctx: FormDep, state: StateDep, later: BackgroundTasks
) -> Response:
    """As PUT /v1/credentials/{provider}; its check follows on the next page (once this commit
    is visible to the checker)."""
    ctx.require_decide()
    form = await request.form()
    values = {
        name: str(form.get(name) or "").strip()
        for name in ("provider", "api_key", "base_url", "model", "label")
    }
    try:
        provider = _model_provider(values["provider"])
        secret = {k: values[k] for k in ("api_key", "base_url", "model") if values[k]}
        body = parse(CredentialPut, {"secret": secret, "label": values["label"] or None})
        try:
            await credentials_service.put_credential(
                ctx.conn,
                store=state.credential_store,
                tenant_id=ctx.principal.tenant_id,
                provider=provider,
                secret=body.secret,
                label=body.label,
                allow_internal_urls=state.settings.allow_internal_urls,
                allowed_networks=state.settings.allowed_private_networks,
            )
        except DomainError as exc:
            raise domain_errors(exc, "api_key") from exc
    except FormErrors as errors:
        values.pop("api_key")  # a secret is never sent back, not even to its owner
        return await _refused(request, ctx, state, "keys", _secret_fields(errors), values)
    later.add_task(state.resolver.changed, tenant_id=ctx.principal.tenant_id, provider=provider)
    return RedirectResponse(f"{SECTION}?check={provider.value}#keys", status_code=303)


def _model_provider(name: str) -> Provider:
    try:
        provider = Provider(name)
    except ValueError:
        provider = None
    if provider not in MODEL_PROVIDERS:
        raise FormErrors({"provider": "pick openai, anthropic or openai_compatible"})
    assert provider is not None  # noqa: S101 - narrowed by the membership test above
    return provider


def _secret_fields(errors: FormErrors) -> FormErrors:
    """The API names a secret's parts ``secret.api_key``; the form's fields are the parts."""
    return FormErrors(
        {
            name.removeprefix("secret.").removeprefix("secret") or "api_key": text
            for name, text in errors.fields.items()
        }
    )


@router.post("/keys/{provider}/check", response_class=HTMLResponse, include_in_schema=False)
async def check_key(
    request: Request, signed_in: SignedInDep, state: StateDep, provider: Provider
) -> HTMLResponse:
    """As POST /v1/credentials/{provider}/check: the provider's answer is awaited holding no
    database connection, within the tenant's cap on checks in flight."""
    signed_in.require_decide()
    tenant_id = signed_in.principal.tenant_id
    async with state.outbound_checks.slot(tenant_id):
        checked = await health.check_stored(
            state.app_pool,
            state.http,
            store=state.credential_store,
            settings=state.settings,
            tenant_id=tenant_id,
            provider=provider,
        )
    return page(
        request,
        "_key_health.html",
        None,
        provider=provider.value,
        status=checked.status.value,
        detail=checked.status_detail,
        checked_at=checked.checked_at,
        can_decide=True,
    )


# --- crews ------------------------------------------------------------------------------------


@router.post("/crews/{name}", include_in_schema=False)
async def put_crew_model(request: Request, ctx: FormDep, state: StateDep, name: str) -> Response:
    """As PUT /v1/crews/{name}/settings."""
    ctx.require_decide()
    form = await request.form()
    values = {key: str(form.get(key) or "").strip() for key in ("provider", "model")}
    try:
        body = parse(CrewSettingsPut, values)
        try:
            await crews_service.put_settings(
                ctx.conn,
                tenant_id=ctx.principal.tenant_id,
                crew=name,
                provider=body.provider,
                model=body.model,
            )
        except DomainError as exc:
            raise domain_errors(exc, "model") from exc
    except FormErrors as errors:
        return await _refused(request, ctx, state, f"crew-{name}", errors, values)
    return RedirectResponse(f"{SECTION}#crews", status_code=303)


# --- schedules --------------------------------------------------------------------------------


@router.post("/schedules", include_in_schema=False)
async def create_schedule(request: Request, ctx: FormDep, state: StateDep) -> Response:
    """As POST /v1/schedules."""
    ctx.require_submit()
    form = await request.form()
    values = {
        key: str(form.get(key) or "").strip() for key in ("crew", "input", "cron", "timezone")
    }
    data: dict[str, Any] = {**values, "crew": values["crew"] or None, "enabled": "enabled" in form}
    try:
        body = parse(ScheduleCreate, data)
        try:
            await schedules_service.create_schedule(
                ctx.conn, tenant_id=ctx.principal.tenant_id, body=body
            )
        except DomainError as exc:
            raise domain_errors(exc, "crew") from exc
    except FormErrors as errors:
        return await _refused(
            request, ctx, state, "schedule", errors, {**values, "enabled": data["enabled"]}
        )
    return RedirectResponse(f"{SECTION}#schedules", status_code=303)


@router.post("/schedules/{schedule_id}/enabled", include_in_schema=False)
async def enable_schedule(request: Request, ctx: FormDep, schedule_id: uuid.UUID) -> Response:
    """As PATCH /v1/schedules/{id} with ``enabled``."""
    ctx.require_submit()
    form = await request.form()
    await schedules_service.update_schedule(
        ctx.conn,
        tenant_id=ctx.principal.tenant_id,
        schedule_id=schedule_id,
        body=ScheduleUpdate(enabled=form.get("enabled") == "true"),
    )
    return RedirectResponse(f"{SECTION}#schedules", status_code=303)


# --- API keys ---------------------------------------------------------------------------------


@router.post("/api-keys", include_in_schema=False)
async def create_api_key(request: Request, ctx: FormDep, state: StateDep) -> Response:
    """As POST /v1/keys: the key is on this one page and never again."""
    ctx.require_decide()
    form = await request.form()
    values = {key: str(form.get(key) or "").strip() for key in ("name", "role")}
    try:
        body = parse(ApiKeyCreate, {"name": values["name"], "role": values["role"] or "member"})
        try:
            row, key = await tenants_service.create_api_key(
                ctx.conn,
                tenant_id=ctx.principal.tenant_id,
                name=body.name,
                role=body.role,
                creator=ctx.principal.role,
            )
        except DomainError as exc:
            raise domain_errors(exc, "role") from exc
    except FormErrors as errors:
        return await _refused(request, ctx, state, "api-key", errors, values)
    return await _page(
        request, ctx, state, created_key={"name": row.name, "key": key}, status_code=201
    )


@router.post("/api-keys/{key_id}/revoke", include_in_schema=False)
async def revoke_api_key(ctx: FormDep, key_id: uuid.UUID) -> Response:
    """As DELETE /v1/keys/{id}."""
    ctx.require_decide()
    await tenants_service.revoke_api_key(ctx.conn, key_id=key_id, revoker=ctx.principal.role)
    return RedirectResponse(f"{SECTION}#api-keys", status_code=303)


# --- policies ---------------------------------------------------------------------------------


@router.post("/policies", include_in_schema=False)
async def put_policies(request: Request, ctx: FormDep, state: StateDep) -> Response:
    """As PUT /v1/policies: the ticked kinds are the whole rule set."""
    ctx.require_decide()
    form = await request.form()
    values: dict[str, Any] = {}
    rules = []
    for kind in ActionKind:
        ticked = form.get(f"{kind.value}.auto_approve") == "on"
        amount = str(form.get(f"{kind.value}.max_amount") or "").strip()
        currency = str(form.get(f"{kind.value}.currency") or "").strip()
        values |= {
            f"{kind.value}.auto_approve": ticked,
            f"{kind.value}.max_amount": amount,
            f"{kind.value}.currency": currency,
        }
        if ticked:
            rules.append(
                (
                    kind,
                    {
                        "kind": kind.value,
                        "auto_approve": True,
                        "max_amount": amount or None,
                        "currency": currency or None,
                    },
                )
            )
    try:
        body = parse(PoliciesPut, {"rules": [rule for _, rule in rules]})
        try:
            await policies_service.put_policies(
                ctx.conn, tenant_id=ctx.principal.tenant_id, body=body
            )
        except DomainError as exc:
            raise domain_errors(exc) from exc
    except FormErrors as errors:
        # rules.2.max_amount -> the third ticked kind's amount field
        named = {}
        for loc, text in errors.fields.items():
            parts = loc.split(".")
            if parts[0] == "rules" and len(parts) > 1 and parts[1].isdigit():
                ticked_kind = rules[int(parts[1])][0].value
                named[f"{ticked_kind}.{parts[2] if len(parts) > 2 else 'auto_approve'}"] = text
            else:
                named[loc] = text
        return await _refused(request, ctx, state, "policies", FormErrors(named), values)
    return RedirectResponse(f"{SECTION}#policies", status_code=303)


# --- memory -----------------------------------------------------------------------------------


@router.post("/memory/{memory_id}/forget", include_in_schema=False)
async def forget_memory(ctx: FormDep, memory_id: uuid.UUID) -> Response:
    """As DELETE /v1/memories/{id}."""
    ctx.require_submit()
    await memory_service.delete_memory(
        ctx.conn, tenant_id=ctx.principal.tenant_id, memory_id=memory_id
    )
    return RedirectResponse(f"{SECTION}#memory", status_code=303)


@router.post("/memory/forget-scope", include_in_schema=False)
async def forget_scope(request: Request, ctx: FormDep, state: StateDep) -> Response:
    """As DELETE /v1/memories?scope=: every memory of one scope."""
    ctx.require_submit()
    form = await request.form()
    values = {"scope": str(form.get("scope") or "").strip()}
    try:
        if not values["scope"]:
            raise FormErrors(
                {"scope": "name the scope to forget, e.g. thread:<id> (invalid_request)"}
            )
        try:
            deleted = await memory_service.forget_scope(
                ctx.conn, tenant_id=ctx.principal.tenant_id, scope=Scope.parse(values["scope"])
            )
        except DomainError as exc:
            raise domain_errors(exc, "scope") from exc
    except FormErrors as errors:
        return await _refused(request, ctx, state, "forget-scope", errors, values)
    return RedirectResponse(f"{SECTION}?forgotten={deleted}#memory", status_code=303)
