"""The crews a task can name, read from their YAML definitions.

Only the definitions here: building a crew imports CrewAI, which the API process never pays for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).with_name("config")
DEFAULT_CREW = "assistant"
CREW_NAMES = ("marketing", "analytics", "ecommerce", "operations", "assistant")


@dataclass(frozen=True)
class AgentInfo:
    role: str
    goal: str
    tools: tuple[str, ...]
    key: str = ""  # the agent's name in its YAML


@dataclass(frozen=True)
class CrewInfo:
    name: str
    description: str
    agents: tuple[AgentInfo, ...]


@functools.cache
def definition(name: str) -> dict[str, Any]:
    """The crew's YAML as written: ``description``, ``agents`` and ``tasks`` in order."""
    loaded: dict[str, Any] = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    return loaded


def _info(name: str) -> CrewInfo:
    spec = definition(name)
    agents = tuple(
        AgentInfo(
            role=" ".join(a["role"].split()),
            goal=" ".join(a["goal"].split()),
            tools=tuple(a["tools"]),
            key=key,
        )
        for key, a in spec["agents"].items()
    )
    return CrewInfo(name, " ".join(spec["description"].split()), agents)


CREWS: dict[str, CrewInfo] = {name: _info(name) for name in CREW_NAMES}
