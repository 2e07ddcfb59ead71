"""Following a task in the terminal: its steps, tools, streamed tokens, answer and cost.

``opshub run`` submits and follows; ``opshub tasks watch`` follows. Ctrl-C while following
cancels the task (asking first in a terminal) rather than leaving it running, and billed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.padding import Padding
from rich.panel import Panel
from rich.pretty import Pretty
from rich.text import Text

from opshub.client import Client, calls
from opshub.client.errors import ConflictError
from opshub.tasks.models import TaskStatus
from opshub.tasks.schemas import TaskEvent, TaskRead

# The exit code of a command that followed a task, per the task's status (2: usage errors).
EXIT_CODES = {
    TaskStatus.succeeded: 0,
    TaskStatus.failed: 1,
    TaskStatus.cancelled: 3,
    TaskStatus.awaiting_approval: 4,
}
MAX_TEXT = 2000  # characters of a tool result shown when it isn't structured


class Follower:
    """Renders one task's events; tokens are written as they arrive, on one line."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last_seq = 0
        self._in_tokens = False

    def show(self, event: TaskEvent) -> None:
        self.last_seq = max(self.last_seq, event.seq)
        if event.type == "token":
            self.console.print(Text(event.text or "", style="dim"), end="")
            self._in_tokens = True
            return
        line = describe(event)
        if line is None:
            return
        self.finish()
        self.console.print(line)

    def finish(self) -> None:
        if self._in_tokens:
            self.console.print()
            self._in_tokens = False


def describe(event: TaskEvent) -> RenderableType | None:
    """What a person wants to read about one event; None for bookkeeping events."""
    kind, agent, extra = event.type, event.agent or "agent", event.model_extra or {}
    if kind == "task.started":
        return Text.from_markup("[dim]running…[/]")
    if kind == "agent.step" and extra.get("status") == "started":
        return Text.from_markup(f"[bold cyan]{agent}[/] starts working")
    if kind == "tool.call":
        args = json.dumps(extra.get("args") or {}, ensure_ascii=False)
        return Text.from_markup(f"[yellow]→ {event.tool}[/] ") + Text(args)
    if kind == "tool.result":
        if extra.get("error"):
            return Text.from_markup(f"[red]← {event.tool} failed:[/] ") + Text(str(extra["error"]))
        head = Text.from_markup(f"[green]← {event.tool}[/]")
        return Group(head, Padding(readable(event.text or ""), (0, 0, 0, 2)))
    if kind == "llm.call":
        usage = event.usage or {}
        return Text.from_markup(
            f"[dim]model call {extra.get('model', '')}: {usage.get('input_tokens', 0)} in / "
            f"{usage.get('output_tokens', 0)} out[/]"
        )
    if kind == "task.routed":
        crew = extra.get("crew")
        return Text.from_markup(
            f"[bold]routed to the {crew} crew[/]" if crew else "[bold]the router asks back[/]"
        )
    if kind == "action.proposed":
        status = (extra.get("action") or {}).get("status", "pending")
        return Text.from_markup(f"[magenta]proposed ({status}):[/] ") + Text(event.text or "")
    if kind == "task.retrying":
        error = extra.get("error") or {}
        return Text.from_markup("[red]retrying:[/] ") + Text(str(error.get("message", "")))
    return None


def readable(text: str) -> RenderableType:
    """A tool's result as a person reads it: structure laid out, long text cut with a count."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict | list):
        return Pretty(value, max_length=10, max_string=160, max_depth=4)
    if len(text) <= MAX_TEXT:
        return Text(text)
    return Text(text[:MAX_TEXT]) + Text(f" … ({len(text) - MAX_TEXT} more characters)", "dim")


def follow(
    hub: Client,
    task_id: uuid.UUID,
    console: Console,
    *,
    confirm_cancel: Callable[[], bool] | None,
) -> TaskRead:
    """Show the task's events until its run ends; return the task as it ended.

    Ctrl-C cancels the task: after ``confirm_cancel()`` says yes, or at once when it is None
    (no terminal to ask in). Declined, the task keeps running and KeyboardInterrupt goes on up.
    """
    follower = Follower(console)
    try:
        for event in hub.events(task_id):
            follower.show(event)
    except KeyboardInterrupt:
        console.print()
        if confirm_cancel is not None and not confirm_cancel():
            raise
        console.print("[yellow]cancelling the task…[/]")
        try:
            hub.send(calls.cancel_task(task_id))
        except ConflictError:
            pass  # it ended meanwhile: what it ended as is shown below
        for event in hub.events(task_id, after=follower.last_seq):
            follower.show(event)
    follower.finish()
    return hub.send(calls.get_task(task_id))


def show_outcome(task: TaskRead, console: Console) -> None:
    if task.result:
        console.print(Panel(Markdown(str(task.result)), title="answer", border_style="green"))
    if task.error is not None:
        console.print(f"[red]{task.error.code}:[/] {task.error.message}", markup=True)
    if task.status is TaskStatus.awaiting_approval:
        console.print("[magenta]waiting for a person:[/] opshub actions list --status pending")
    usage = task.usage
    console.print(
        f"[dim]{task.status.value} · {usage.input_tokens:,} input + {usage.output_tokens:,} "
        f"output tokens · {usage.cost_usd} USD ({usage.billed_to or 'no model calls'})[/]"
    )
