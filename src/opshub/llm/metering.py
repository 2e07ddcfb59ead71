"""Metering one crew run: tokens and cost of every model call, and the budget stop.

The worker sets ``current_run`` before a kickoff. CrewAI runs its steps in threads that copy the
caller's context and hands events to handlers with a copy of the emitter's context, so the
meter reaches every call of its own run and no other run's, however many run at once.
``install`` imports CrewAI: only processes that run crews call it.
"""

from __future__ import annotations

import threading
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from opshub.config import ModelPrice
from opshub.credentials.models import Source
from opshub.errors import DomainError
from opshub.llm import usage as usage_ledger
from opshub.llm.crewai_setup import install_once, prepare_crewai
from opshub.llm.errors import BudgetExceededError
from opshub.llm.prices import model_family
from opshub.llm.usage import TokenUsage
from opshub.observability.metrics import record_model_call

current_run: ContextVar[RunMeter | None] = ContextVar("opshub_current_run", default=None)


@dataclass(frozen=True)
class MeteredCall:
    model: str
    usage: TokenUsage
    cost_usd: Decimal


LEDGER_COLUMNS = (
    "providers",
    "models",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "costs_usd",
    "billed_to",
    "kinds",
)
NO_LEDGER: dict[str, list[Any]] = {name: [] for name in LEDGER_COLUMNS}
"""The ledger of a run that ended before it had a meter."""


@dataclass
class RunMeter:
    tenant_id: uuid.UUID
    task_id: uuid.UUID | None
    provider: str
    billed_to: Source
    prices: dict[str, ModelPrice]
    budget_left_usd: Decimal | None = None
    """Platform money this run may still spend; None: no budget applies."""
    byok_run_fee_usd: Decimal = Decimal(0)
    """The platform's fee for a run on the tenant's own key (the plan's BYOK rate)."""
    calls: list[MeteredCall] = field(default_factory=list)
    stopped_by: DomainError | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, model: str, usage: TokenUsage) -> None:
        cost = usage_ledger.cost_usd(model, usage, self.prices)
        record_model_call(
            provider=self.provider,
            model_family=model_family(model),
            billing=self.billed_to.value,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=cost,
        )
        with self._lock:
            self.calls.append(MeteredCall(model, usage, cost))
            if (
                self.billed_to is Source.platform
                and self.budget_left_usd is not None
                and self.cost_usd >= self.budget_left_usd
            ):
                self.stopped_by = BudgetExceededError(
                    "the run reached this month's platform budget and was stopped"
                )

    def stop(self, reason: DomainError) -> None:
        """Stop the run at its next model call (cancellation uses this too)."""
        self.stopped_by = reason

    @property
    def usage(self) -> TokenUsage:
        total = TokenUsage()
        for call in self.calls:
            total = total + call.usage
        return total

    @property
    def cost_usd(self) -> Decimal:
        return sum((call.cost_usd for call in self.calls), Decimal(0))

    def ledger(self) -> dict[str, list[Any]]:
        """The run's rows of the usage ledger as columns: one per model call, and the
        platform's fee for a run on the tenant's own key. The run's ending writes them
        (``end_run``), and its memory write-back the extraction call's (``memory_written``)."""
        rows: list[tuple[str, str, int, int, int, Decimal, str, str]] = [
            (
                self.provider,
                call.model,
                call.usage.input_tokens,
                call.usage.output_tokens,
                call.usage.cached_tokens,
                call.cost_usd,
                self.billed_to.value,
                "model_call",
            )
            for call in self.calls
        ]
        if self.billed_to is Source.byok and self.byok_run_fee_usd > 0:
            rows.append(
                ("opshub", "byok-run-fee", 0, 0, 0, self.byok_run_fee_usd, "byok", "run_fee")
            )
        return {name: [row[i] for row in rows] for i, name in enumerate(LEDGER_COLUMNS)}


def call(llm: Any, messages: list[Any]) -> Any:
    """One model call outside a kickoff (blocking), on the current run's meter by the time it
    returns: CrewAI hands the call's usage to the meter from its handler pool, and only a
    kickoff waits for its handlers before returning."""
    from crewai.events import crewai_event_bus

    try:
        return llm.call(messages)
    finally:
        crewai_event_bus.flush()


def _on_llm_call_completed(_source: Any, event: Any) -> None:
    meter = current_run.get()
    if meter is not None:
        meter.add(event.model or "unknown", TokenUsage.from_provider(event.usage))


def _before_llm_call(_context: Any) -> None:
    from crewai.hooks.dispatch import HookAborted

    meter = current_run.get()
    if meter is not None and meter.stopped_by is not None:
        raise HookAborted(meter.stopped_by.message, source="opshub")


def install(data_dir: Path) -> None:
    """Register the meter with CrewAI once per process."""
    prepare_crewai(data_dir)
    install_once("metering", _register)


def _register() -> None:
    from crewai.events import crewai_event_bus
    from crewai.events.types.llm_events import LLMCallCompletedEvent
    from crewai.hooks import register_before_llm_call_hook

    crewai_event_bus.on(LLMCallCompletedEvent)(_on_llm_call_completed)
    register_before_llm_call_hook(_before_llm_call)
