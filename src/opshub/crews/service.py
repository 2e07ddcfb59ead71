"""The crews a tenant can use, and the model it picked for each (``crew_settings``, under RLS).

Read from the registry: nothing here imports CrewAI, so the API process can list crews.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from opshub.crews.registry import CREWS, CrewInfo
from opshub.crews.schemas import AgentRead, CrewModel, CrewRead, ModelProvider
from opshub.db.sql import Connection, load_queries
from opshub.errors import NotFoundError

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def _read(info: CrewInfo, model: tuple[str, str] | None) -> CrewRead:
    picked = CrewModel.model_validate({"provider": model[0], "model": model[1]}) if model else None
    return CrewRead(
        name=info.name,
        description=info.description,
        agents=[AgentRead(role=a.role, goal=a.goal, tools=list(a.tools)) for a in info.agents],
        model=picked,
    )


def _crew(name: str) -> CrewInfo:
    info = CREWS.get(name)
    if info is None:
        raise NotFoundError(f"there is no crew {name!r}", details={"crews": list(CREWS)})
    return info


async def list_crews(conn: Connection, *, tenant_id: uuid.UUID) -> list[CrewRead]:
    rows = await QUERIES["list_crew_settings"].fetch(conn, tenant_id=tenant_id)
    picked = {row["crew"]: (row["provider"], row["model"]) for row in rows}
    return [_read(info, picked.get(name)) for name, info in CREWS.items()]


async def get_model(conn: Connection, *, tenant_id: uuid.UUID, crew: str) -> tuple[str, str] | None:
    """The (provider, model) the tenant picked for ``crew``; None when it picked none."""
    row = await QUERIES["get_crew_setting"].fetchrow(conn, tenant_id=tenant_id, crew=crew)
    return (row["provider"], row["model"]) if row else None


async def put_settings(
    conn: Connection, *, tenant_id: uuid.UUID, crew: str, provider: ModelProvider, model: str
) -> CrewRead:
    info = _crew(crew)
    await QUERIES["put_crew_setting"].execute(
        conn, tenant_id=tenant_id, crew=crew, provider=provider, model=model
    )
    return _read(info, (provider, model))
