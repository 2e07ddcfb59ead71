"""What a tool needs to act for one tenant from CrewAI's worker threads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import httpx

from opshub.config import Settings
from opshub.credentials.resolver import CredentialResolver

T = TypeVar("T")


@dataclass(frozen=True)
class Connectors:
    """How tools reach the services a tenant connected: its credentials and one HTTP client."""

    resolver: CredentialResolver
    settings: Settings
    http: httpx.AsyncClient


@dataclass(frozen=True)
class ToolContext:
    tenant_id: uuid.UUID
    app_pool: asyncpg.Pool
    loop: asyncio.AbstractEventLoop
    timeout_seconds: float = 30.0
    task_id: uuid.UUID | None = None  # the run the tools act for; actions are proposed in it
    connectors: Connectors | None = None
    # The run's event stream (thread-safe): ``emit(type, **data)``.
    emit: Callable[..., None] | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the worker's event loop from a tool's thread and wait for it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout or self.timeout_seconds)
        except TimeoutError:
            future.cancel()  # the coroutine stops too, rather than run on for nobody
            raise
