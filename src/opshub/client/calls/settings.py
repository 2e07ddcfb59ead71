"""Who the caller is, API keys, platform tenants, and the tenant's settings: credentials,
budget, fallback model, MCP servers and the webhook signing secret."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from opshub.api.routes.admin import TenantCreate, TenantCreated
from opshub.api.routes.auth import TokenResponse, WhoAmI
from opshub.api.routes.budget import BudgetRead
from opshub.client.calls.base import Call, body, call, no_content
from opshub.credentials.schemas import CredentialRead, CredentialSummary
from opshub.llm.fallback import FallbackRead, ModelChoice
from opshub.mcp_servers.schemas import McpServerPut, McpServerRead
from opshub.tenants.schemas import ApiKeyCreated, ApiKeyRead, TenantRead
from opshub.webhooks.schemas import WebhookSecretCreated


def create_token(*, email: str, password: str) -> Call[TokenResponse]:
    sent = {"email": email, "password": password}
    return call("POST", "/v1/auth/token", TokenResponse, json=sent)


def who_am_i() -> Call[WhoAmI]:
    return call("GET", "/v1/auth/me", WhoAmI)


def list_keys() -> Call[list[ApiKeyRead]]:
    return call("GET", "/v1/keys", list[ApiKeyRead])


def create_key(*, name: str, role: str = "member") -> Call[ApiKeyCreated]:
    return call("POST", "/v1/keys", ApiKeyCreated, json={"name": name, "role": role})


def revoke_key(key_id: uuid.UUID | str) -> Call[ApiKeyRead]:
    return call("DELETE", f"/v1/keys/{key_id}", ApiKeyRead)


def create_tenant(tenant: TenantCreate) -> Call[TenantCreated]:
    """With the platform admin token."""
    return call("POST", "/v1/admin/tenants", TenantCreated, json=body(tenant))


def list_tenants() -> Call[list[TenantRead]]:
    """With the platform admin token."""
    return call("GET", "/v1/admin/tenants", list[TenantRead])


def list_credentials() -> Call[list[CredentialSummary]]:
    return call("GET", "/v1/credentials", list[CredentialSummary])


def put_credential(
    provider: str, *, secret: dict[str, Any], label: str | None = None
) -> Call[CredentialRead]:
    sent: dict[str, Any] = {"secret": secret}
    if label is not None:
        sent["label"] = label
    return call("PUT", f"/v1/credentials/{provider}", CredentialRead, json=sent)


def check_credential(provider: str) -> Call[CredentialRead]:
    return call("POST", f"/v1/credentials/{provider}/check", CredentialRead)


def delete_credential(provider: str) -> Call[None]:
    return no_content("DELETE", f"/v1/credentials/{provider}")


def get_budget() -> Call[BudgetRead]:
    return call("GET", "/v1/budget", BudgetRead)


def put_budget(*, monthly_platform_usd: Decimal | None) -> Call[BudgetRead]:
    """None removes the budget."""
    amount = None if monthly_platform_usd is None else str(monthly_platform_usd)
    return call("PUT", "/v1/budget", BudgetRead, json={"monthly_platform_usd": amount})


def get_fallback() -> Call[FallbackRead]:
    return call("GET", "/v1/models/fallback", FallbackRead)


def put_fallback(fallback: ModelChoice | None) -> Call[FallbackRead]:
    """None: runs fail over to nothing when their provider is down."""
    sent = {"fallback": None if fallback is None else body(fallback)}
    return call("PUT", "/v1/models/fallback", FallbackRead, json=sent)


def list_mcp_servers() -> Call[list[McpServerRead]]:
    return call("GET", "/v1/mcp-servers", list[McpServerRead])


def get_mcp_server(name: str) -> Call[McpServerRead]:
    return call("GET", f"/v1/mcp-servers/{name}", McpServerRead)


def put_mcp_server(name: str, server: McpServerPut) -> Call[McpServerRead]:
    return call("PUT", f"/v1/mcp-servers/{name}", McpServerRead, json=body(server))


def delete_mcp_server(name: str) -> Call[None]:
    return no_content("DELETE", f"/v1/mcp-servers/{name}")


def rotate_webhook_secret(*, overlap_seconds: int | None = None) -> Call[WebhookSecretCreated]:
    sent = {} if overlap_seconds is None else {"overlap_seconds": overlap_seconds}
    return call("POST", "/v1/webhook-secret", WebhookSecretCreated, json=sent)
