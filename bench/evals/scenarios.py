"""Eval scenarios: what a crew is asked, what a good run does, and how a run is scored.

A scenario is one YAML file in ``scenarios/`` (the format is in README.md). Loading validates it
against the hub itself: the crew exists, every tool it names is one its crew has, every action
kind is one the hub proposes. Scoring is pure: ``observe`` turns what the API returned (the task,
its events, its actions) into an ``Observed`` run, and ``score`` checks it against the scenario.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opshub.actions.kinds import PAYLOADS, ActionKind
from opshub.crews.registry import CREWS
from opshub.runtime.run_outcome import NOTE_HEADING
from opshub.tasks.schemas import MAX_INPUT_CHARS

SCENARIO_DIR = Path(__file__).with_name("scenarios")
Seed = Literal["roas_drop", "budget_shift", "shop"]  # built by seeds.py
# The hub appends a note to a run's answer when proposals wait (awaiting_note); the checks read
# the model's own answer, before it.
APPROVAL_NOTE = NOTE_HEADING
# The reason the router gives when it asks back because the model's reply was unreadable
# (opshub.crews.routing.decide): a question, but not the model's.
ROUTER_FALLBACK_REASON = "the routing model's reply could not be read"
ENDED = ("succeeded", "awaiting_approval")
TOLERANCE = Decimal("0.01")  # numbers in a payload match within this


class ScenarioError(ValueError):
    """A scenario file that does not load; the message names the file and the problem."""


def _tools(crew: str) -> set[str]:
    return {tool for agent in CREWS[crew].agents for tool in agent.tools}


class Proposal(BaseModel):
    """A change the run must propose: its kind, and payload fields it must carry (optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ActionKind
    payload: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _kind_alone(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_fields(self) -> Proposal:
        fields = PAYLOADS[self.kind].model_fields
        if unknown := sorted(set(self.payload) - set(fields)):
            raise ValueError(
                f"{self.kind.value} payloads have no field {', '.join(unknown)}; "
                f"they have {', '.join(fields)}"
            )
        return self

    def label(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.payload.items())
        return f"{self.kind.value} ({fields})" if fields else self.kind.value

    def matches(self, kind: str, payload: dict[str, Any]) -> bool:
        return kind == self.kind.value and all(
            _same(payload.get(key), value) for key, value in self.payload.items()
        )


def _same(got: Any, want: Any) -> bool:
    if got is None:
        return False
    if not isinstance(want, bool):
        try:
            return abs(Decimal(str(got)) - Decimal(str(want))) <= TOLERANCE
        except InvalidOperation:
            pass
    return str(got).casefold() == str(want).casefold()


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)
    crew: str | None = Field(description="The crew asked; null: the router picks one.")
    request: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    seed: Seed
    route_to: str | None = Field(default=None, description="Routed: the crew it must pick.")
    must_call: tuple[str, ...] = ()
    must_not_call: tuple[str, ...] = ()
    must_propose: tuple[Proposal, ...] = ()
    must_contain: tuple[tuple[str, ...], ...] = Field(
        default=(), description="Facts the answer states; a list is alternatives (any one)."
    )
    expect_question: bool = False

    @field_validator("crew", "route_to")
    @classmethod
    def _known_crew(cls, value: str | None) -> str | None:
        if value is not None and value not in CREWS:
            raise ValueError(f"unknown crew {value!r}; the crews are {', '.join(CREWS)}")
        return value

    @field_validator("must_contain", mode="before")
    @classmethod
    def _alternatives(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return [[item] if isinstance(item, str) else item for item in value]

    @field_validator("must_contain")
    @classmethod
    def _no_blank_fact(cls, value: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        if any(not fact or not all(text.strip() for text in fact) for fact in value):
            raise ValueError("a fact is a non-empty text, or a non-empty list of them")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.crew is not None and (self.route_to or self.expect_question):
            raise ValueError("route_to and expect_question are for routed scenarios (crew: null)")
        if self.expect_question and (self.route_to or self.must_call or self.must_propose):
            raise ValueError("a scenario that expects a question runs no crew: no route_to, "
                             "must_call or must_propose")  # fmt: skip
        runs = self.crew or self.route_to
        known = _tools(runs) if runs else set().union(*(_tools(name) for name in CREWS))
        whose = f"the {runs} crew" if runs else "no crew"
        for field in ("must_call", "must_not_call"):
            for tool in getattr(self, field):
                if tool not in known:
                    raise ValueError(
                        f"{field}: {whose} has no tool {tool!r}; it has {', '.join(sorted(known))}"
                    )
        if both := set(self.must_call) & set(self.must_not_call):
            raise ValueError(f"{', '.join(sorted(both))} both in must_call and must_not_call")
        return self


def load(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text())
        scenario = Scenario.model_validate(data)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path.name}: not YAML: {exc}") from exc
    except ValidationError as exc:
        raise ScenarioError(f"{path.name}: {'; '.join(map(_problem, exc.errors()))}") from exc
    if scenario.name != path.stem:
        raise ScenarioError(f"{path.name}: name {scenario.name!r} differs from the file's name")
    return scenario


def _problem(error: Any) -> str:
    where = ".".join(map(str, error["loc"])) or "file"
    got = f" (got {error['input']!r})" if error["type"] in ("enum", "literal_error") else ""
    return f"{where}: {error['msg'].removeprefix('Value error, ')}{got}"


def load_all(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    """Every scenario, by name; the first file that does not load stops it."""
    return [load(path) for path in sorted(directory.glob("*.yaml"))]


@dataclass(frozen=True)
class Observed:
    """What a run did, as the API reported it."""

    status: str
    crew: str | None  # the crew that ran (routed: the router's pick; None: it asked back)
    tools: tuple[str, ...] = ()  # tool.call events, in order
    proposals: tuple[tuple[str, dict[str, Any]], ...] = ()  # (kind, payload)
    answer: str = ""  # the model's final answer, without the hub's approval note
    asked_back: bool = False  # the router answered with a question
    router_fallback: bool = False  # ... because the model's reply could not be read
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    seconds: float = 0.0


def observe(
    task: dict[str, Any], events: Iterable[dict[str, Any]], actions: Iterable[dict[str, Any]]
) -> Observed:
    """``task``: GET /v1/tasks/{id} when the run ended (before any proposal was decided);
    ``events``: its SSE events' data; ``actions``: GET /v1/actions?task_id= items."""
    events = list(events)
    routed = [e for e in events if e.get("type") == "task.routed"]
    asked = bool(routed) and routed[-1].get("crew") is None
    error = task.get("error") or {}
    usage = task.get("usage") or {}
    return Observed(
        status=task["status"],
        crew=task.get("crew"),
        tools=tuple(e["tool"] for e in events if e.get("type") == "tool.call" and e.get("tool")),
        proposals=tuple((a["kind"], a.get("payload") or {}) for a in actions),
        answer=str(task.get("result") or "").partition(APPROVAL_NOTE)[0],
        asked_back=asked,
        router_fallback=asked and routed[-1].get("text") == ROUTER_FALLBACK_REASON,
        error=f"{error['code']}: {error['message']}" if error else None,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cost_usd=Decimal(str(usage.get("cost_usd") or 0)),
    )


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


def score(scenario: Scenario, run: Observed) -> list[Check]:
    """One check per expectation, in the scenario's order; the first says whether the run ended."""
    ended = run.status in (("succeeded",) if scenario.expect_question else ENDED)
    checks = [Check("ends", ended, run.status + (f" ({run.error})" if run.error else ""))]
    if scenario.route_to:
        checks.append(
            Check(
                f"routed to {scenario.route_to}",
                run.crew == scenario.route_to,
                run.crew or "no crew: it asked back",
            )
        )
    if scenario.expect_question:
        detail = "no question" if not run.asked_back else f"asked: {run.answer[:120]}"
        if run.router_fallback:
            detail = "only the hub's fallback question: the model's routing reply was unreadable"
        checks.append(Check("asks back", run.asked_back and not run.router_fallback, detail))
    for tool in scenario.must_call:
        n = run.tools.count(tool)
        checks.append(Check(f"calls {tool}", n > 0, f"{n}x" if n else "never called"))
    for tool in scenario.must_not_call:
        n = run.tools.count(tool)
        checks.append(Check(f"does not call {tool}", n == 0, f"called {n}x" if n else ""))
    left = list(run.proposals)
    for wanted in scenario.must_propose:
        found = next((p for p in left if wanted.matches(*p)), None)
        if found is not None:
            left.remove(found)
        checks.append(Check(f"proposes {wanted.label()}", found is not None, _made(wanted, run)))
    text = run.answer.casefold()
    for fact in scenario.must_contain:
        hit = next((alt for alt in fact if alt.casefold() in text), None)
        name = " or ".join(repr(alt) for alt in fact)
        checks.append(Check(f"answer mentions {name}", hit is not None, ""))
    return checks


def _made(wanted: Proposal, run: Observed) -> str:
    """The run's proposals of the wanted kind, by the fields the scenario names."""
    same = [payload for kind, payload in run.proposals if kind == wanted.kind.value]
    if not same:
        return ", ".join(kind for kind, _ in run.proposals) or "nothing proposed"
    if not wanted.payload:
        return f"{len(same)} of that kind"
    return "; ".join(", ".join(f"{k}={p.get(k)}" for k in wanted.payload) for p in same)
