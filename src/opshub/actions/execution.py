"""What an executor gets and gives back. One executor per action kind, in ``executors/``.

An executor must be safe to run again after a crash mid-call: it first looks for what an earlier
attempt of the same action already did (``action_id`` is written where the service allows, e.g.
a Saleor ``externalReference``) and only does what is missing. Absolute writes (a budget, a
status, a stock level) are naturally safe to repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from opshub.actions.kinds import Payload
from opshub.config import Settings
from opshub.credentials.resolver import ResolvedCredential
from opshub.mcp_servers.client import McpServer


@dataclass(frozen=True)
class ExecutionContext:
    action_id: uuid.UUID
    tenant_id: uuid.UUID
    http: httpx.AsyncClient
    settings: Settings
    credential: ResolvedCredential | None  # None: the kind's service has no provider credential
    mcp_server: McpServer | None = None  # the server an mcp.tool_call goes to, as registered now

    @property
    def secret(self) -> dict[str, Any]:
        """The provider credential's secret, for kinds executed with one."""
        if self.credential is None:
            raise RuntimeError("this action kind is executed without a provider credential")
        return self.credential.secret


# Returns the outcome recorded on the action (ids of what was created, the new values); raises a
# ConnectorError when the service refused.
Executor = Callable[[ExecutionContext, Any], Awaitable[dict[str, Any]]]
__all__ = ["ExecutionContext", "Executor", "Payload"]
