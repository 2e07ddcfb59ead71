"""Store, list, read, check and delete a tenant's credentials.

Functions run on a tenant-bound connection; the secret itself goes through the ``SecretStore``.
What they return describes a credential by fingerprint and last four characters only.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from opshub.config import Settings
from opshub.credentials.errors import CredentialStoreError
from opshub.credentials.models import Health, Provider, Source
from opshub.credentials.schemas import (
    IDENTIFYING_FIELD,
    CredentialRead,
    CredentialSummary,
    validate_secret,
)
from opshub.credentials.store import SecretStore, StoredRow
from opshub.db.sql import Connection, Record, load_queries
from opshub.errors import NotFoundError
from opshub.outbound import Network
from opshub.outbox import service as outbox

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def identify(provider: Provider, secret: dict[str, Any]) -> tuple[str, str]:
    """(fingerprint, last four characters) of the secret's identifying value."""
    value = str(secret.get(IDENTIFYING_FIELD[provider]) or secret.get("base_url") or "")
    return hashlib.sha256(value.encode()).hexdigest()[:16], value[-4:]


def platform_secret(settings: Settings, provider: Provider) -> dict[str, Any] | None:
    key = {
        Provider.openai: settings.platform_openai_api_key,
        Provider.anthropic: settings.platform_anthropic_api_key,
    }.get(provider)
    return {"api_key": key.get_secret_value()} if key else None


async def put_credential(
    conn: Connection,
    *,
    store: SecretStore,
    tenant_id: uuid.UUID,
    provider: Provider,
    secret: dict[str, Any],
    label: str | None,
    allow_internal_urls: bool = False,
    allowed_networks: Sequence[Network] = (),
) -> CredentialRead:
    stored = validate_secret(
        provider,
        secret,
        allow_internal_urls=allow_internal_urls,
        allowed_networks=allowed_networks,
    )
    fingerprint, last4 = identify(provider, stored)
    current = await QUERIES["lock_version"].fetchval(
        conn, tenant_id=tenant_id, provider=provider.value
    )
    sealed = await store.seal(
        conn, tenant_id=tenant_id, provider=provider.value, secret=stored, current_version=current
    )
    row = await QUERIES["upsert_credential"].fetchone(
        conn,
        tenant_id=tenant_id,
        provider=provider.value,
        label=label,
        fingerprint=fingerprint,
        last4=last4,
        backend=store.backend,
        ciphertext=sealed.ciphertext,
        version=sealed.version,
    )
    return CredentialRead.model_validate(dict(row))


async def get_credential(
    conn: Connection, *, tenant_id: uuid.UUID, provider: Provider
) -> CredentialRead:
    row = await QUERIES["get_credential"].fetchrow(
        conn, tenant_id=tenant_id, provider=provider.value
    )
    if row is None:
        raise NotFoundError(f"no {provider.value} credential is stored")
    return CredentialRead.model_validate(dict(row))


async def list_credentials(
    conn: Connection, *, tenant_id: uuid.UUID, settings: Settings, plan: str | None = None
) -> list[CredentialSummary]:
    """Every provider: the tenant's own key, else the platform's where the plan allows it.
    ``plan``: the tenant's, when the caller has read it already."""
    rows = {
        row["provider"]: row
        for row in await QUERIES["list_credentials"].fetch(conn, tenant_id=tenant_id)
    }
    if plan is None:
        plan = await QUERIES["get_plan"].fetchval(conn, tenant_id=tenant_id)
    summaries = []
    for provider in Provider:
        row = rows.get(provider.value)
        if row is not None:
            summaries.append(
                CredentialSummary(
                    provider=provider,
                    source=Source.byok,
                    status=row["status"],
                    checked_at=row["checked_at"],
                    fingerprint=row["fingerprint"],
                    last4=row["last4"],
                )
            )
            continue
        platform = plan in settings.platform_key_plans and platform_secret(settings, provider)
        summaries.append(
            CredentialSummary(
                provider=provider,
                source=Source.platform if platform else Source.none,
                status=Health.unchecked,
            )
        )
    return summaries


async def read_secret(
    conn: Connection, *, store: SecretStore, tenant_id: uuid.UUID, provider: Provider
) -> dict[str, Any] | None:
    row = await QUERIES["get_secret_row"].fetchrow(
        conn, tenant_id=tenant_id, provider=provider.value
    )
    if row is None:
        return None
    if row["backend"] != store.backend:
        raise CredentialStoreError(
            f"the {provider.value} secret was stored in {row['backend']}, "
            f"but opshub now runs on {store.backend}: store it again"
        )
    return await store.open(
        conn,
        StoredRow(row["tenant_id"], row["provider"], row["version"], row["ciphertext"]),
    )


async def delete_credential(
    conn: Connection, *, store: SecretStore, tenant_id: uuid.UUID, provider: Provider
) -> None:
    deleted = await QUERIES["delete_credential"].fetchval(
        conn, tenant_id=tenant_id, provider=provider.value
    )
    if deleted is None:
        raise NotFoundError(f"no {provider.value} credential is stored")
    await store.destroy(tenant_id=tenant_id, provider=provider.value)


async def all_credentials(conn: Connection) -> list[Record]:
    """(tenant_id, provider) of every stored credential, across tenants: the owner's sweep."""
    return await QUERIES["all_credentials"].fetch(conn)


async def record_health(
    conn: Connection,
    *,
    tenant_id: uuid.UUID,
    provider: Provider,
    status: Health,
    detail: str | None,
    checked_at: datetime,
) -> Health | None:
    """Store a check's outcome; return the status it had before (None: no such credential).

    A change of health is a domain event, committed with the change.
    """
    previous: str | None = await QUERIES["record_health"].fetchval(
        conn,
        tenant_id=tenant_id,
        provider=provider.value,
        status=status.value,
        status_detail=detail,
        checked_at=checked_at,
    )
    if previous is None:
        return None
    if previous != status.value:
        await outbox.emit(
            conn,
            tenant_id=tenant_id,
            event_type="credential.health_changed",
            data={
                "provider": provider.value,
                "previous": previous,
                "status": status.value,
                "detail": detail,
                "checked_at": checked_at.isoformat(),
            },
        )
    return Health(previous)
