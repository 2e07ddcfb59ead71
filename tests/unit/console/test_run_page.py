"""A run's page joins an agent's streamed tokens into one step of text."""

from __future__ import annotations

from datetime import UTC, datetime

from opshub.console.routes.runs import streamed_text_joined
from opshub.tasks.schemas import TaskEvent

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def event(seq: int, type_: str, text: str | None = None, agent: str | None = "Writer") -> TaskEvent:
    return TaskEvent(seq=seq, type=type_, ts=NOW, agent=agent, text=text)


def test_consecutive_tokens_of_one_agent_become_one_step() -> None:
    events = [
        event(1, "llm.call"),
        event(2, "token", "Two "),
        event(3, "token", "leads "),
        event(4, "token", "wait."),
        event(5, "token", "Other", agent="Reviewer"),
        event(6, "tool.call"),
        event(7, "token", "Done."),
    ]
    steps = streamed_text_joined(events)
    assert [(s.seq, s.type, s.text) for s in steps] == [
        (1, "llm.call", None),
        (2, "token", "Two leads wait."),
        (5, "token", "Other"),
        (6, "tool.call", None),
        (7, "token", "Done."),
    ]
    assert events[1].text == "Two "  # the stored events are left as they are
