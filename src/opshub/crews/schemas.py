"""Response and request shapes of /v1/crews (API.md, "Crews")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from opshub.llm.fallback import ModelName
from opshub.schemas import StrictInput

ModelProvider = Literal["openai", "anthropic", "openai_compatible"]


class AgentRead(BaseModel):
    role: str
    goal: str
    tools: list[str]


class CrewModel(BaseModel):
    provider: ModelProvider
    model: str


class CrewRead(BaseModel):
    name: str
    description: str
    agents: list[AgentRead]
    model: CrewModel | None  # null: the tenant has not picked one (the worker's default)


class CrewSettingsPut(StrictInput):
    provider: ModelProvider
    model: ModelName
