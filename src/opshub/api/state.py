"""What the API holds for its lifetime: pools, Redis, the login limiter, the JWT key.

Built and closed by the composition root (``opshub.app``); routes read it through ``StateDep``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx
from redis.asyncio import Redis

from opshub.auth.admission import CredentialAdmission
from opshub.auth.crypto import PasswordChecks
from opshub.auth.ratelimit import LoginRateLimiter
from opshub.auth.request_limit import TenantRequestLimiter
from opshub.config import Settings
from opshub.credentials.health import OutboundChecks
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import SecretStore
from opshub.loops import Loops
from opshub.memory.embedders import Embedders
from opshub.memory.indexes import IndexBuilder
from opshub.runtime.live import LiveEvents
from opshub.runtime.tenant_events import TenantEventWakeups


@dataclass
class AppState:
    settings: Settings
    app_pool: asyncpg.Pool
    owner_pool: asyncpg.Pool
    login_pool: asyncpg.Pool
    redis: Redis | None
    limiter: LoginRateLimiter
    password_checks: PasswordChecks
    admission: CredentialAdmission
    requests: TenantRequestLimiter
    outbound_checks: OutboundChecks
    jwt_secret: bytes
    credential_store: SecretStore
    resolver: CredentialResolver
    http: httpx.AsyncClient
    live: LiveEvents
    embedders: Embedders
    memory_indexes: IndexBuilder
    tenant_events: TenantEventWakeups
    loops: Loops  # the process's, for /readyz
