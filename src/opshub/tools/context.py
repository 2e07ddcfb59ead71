"""What a tool needs to act for one tenant from CrewAI's worker threads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


@dataclass(frozen=True)
class ToolContext:
    tenant_id: uuid.UUID
    app_pool: asyncpg.Pool
    loop: asyncio.AbstractEventLoop
    timeout_seconds: float = 30.0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the worker's event loop from a tool's thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout_seconds)
