"""The crews a task can name. Only names and descriptions here: building a crew imports CrewAI,
which the API process never pays for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrewInfo:
    name: str
    description: str


DEFAULT_CREW = "assistant"
CREWS: dict[str, CrewInfo] = {
    "assistant": CrewInfo(
        "assistant",
        "A general operations assistant that answers from the tenant's own data "
        "(clients, leads, campaigns, reports).",
    ),
}
