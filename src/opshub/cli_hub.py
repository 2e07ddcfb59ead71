"""The ``opshub`` commands that talk to a running hub through its API (``opshub.client``):
``run``, ``tasks …``, ``actions …`` and ``credentials put``.

Exit codes: 0 succeeded, 1 failed, 2 usage error (bad arguments, an API error, no hub),
3 cancelled, 4 awaiting approval.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console

from opshub.actions.models import ActionStatus
from opshub.client import Client, calls
from opshub.client.errors import OpshubError
from opshub.credentials.models import Health
from opshub.tasks.models import TaskStatus
from opshub.tasks.schemas import TaskRead
from opshub.terminal_run import EXIT_CODES, follow, show_outcome

T = TypeVar("T")
USAGE_ERROR = 2

tasks_app = typer.Typer(help="Tasks on the hub: list, show, watch, cancel, retry.")
actions_app = typer.Typer(help="Changes crews proposed: list, approve, reject.")
tasks_app.info.no_args_is_help = actions_app.info.no_args_is_help = True

UrlOption = Annotated[str, typer.Option(envvar="OPSHUB_URL", help="The hub's API")]
KeyOption = Annotated[
    str | None, typer.Option(envvar="OPSHUB_API_KEY", help="A tenant API key (ohk_…)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts")]
DEFAULT_URL = "http://127.0.0.1:8000"


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=USAGE_ERROR)


def _api_errors(func: Callable[..., T]) -> Callable[..., T]:
    """An API error or an unreachable hub ends the command with one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except OpshubError as exc:  # ApiError says its code; the rest what failed
            raise fail(str(exc)) from None

    return wrapper


def _hub(url: str, api_key: str | None) -> Client:
    if not api_key:
        raise fail("pass --api-key or set OPSHUB_API_KEY (create one: opshub keys create)")
    return Client(url, api_key)


def _print_json(value: BaseModel | Iterable[BaseModel]) -> None:
    data = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else [item.model_dump(mode="json") for item in value]
    )
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _ended(task: TaskRead, console: Console) -> typer.Exit:
    show_outcome(task, console)
    return typer.Exit(code=EXIT_CODES.get(task.status, 1))


def _follow_and_end(hub: Client, task: TaskRead, cancel_on_interrupt: bool) -> typer.Exit:
    console = Console()
    # In a terminal a person is asked; anywhere else an interrupt means stop, and cancel.
    ask = sys.stdin.isatty() and not cancel_on_interrupt
    confirm = (lambda: typer.confirm("cancel the task?", default=True)) if ask else None
    try:
        ended = follow(hub, task.id, console, confirm_cancel=confirm)
    except KeyboardInterrupt:
        console.print(f"[yellow]the task keeps running:[/] opshub tasks watch {task.id}")
        return typer.Exit(code=130)
    return _ended(ended, console)


CancelOption = Annotated[
    bool,
    typer.Option(
        "--cancel-on-interrupt", help="Ctrl-C cancels the task without asking (in a terminal too)"
    ),
]


@_api_errors
def run(
    message: Annotated[str, typer.Argument(help="What to do, in plain language")],
    crew: Annotated[str | None, typer.Option(help="The crew to run (default: routed)")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    cancel_on_interrupt: CancelOption = False,
) -> None:
    """Submit a task and show the run live: steps, tools, streamed tokens, answer, cost."""
    with _hub(url, api_key) as hub:
        task = hub.send(calls.submit_task(input=message, crew=crew))
        typer.echo(f"task {task.id}")
        raise _follow_and_end(hub, task, cancel_on_interrupt)


@tasks_app.command("list")
@_api_errors
def tasks_list(
    status: Annotated[TaskStatus | None, typer.Option(help="Only tasks in this status")] = None,
    crew: Annotated[str | None, typer.Option(help="Only this crew's tasks")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many")] = 20,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The tenant's tasks, newest first."""
    with _hub(url, api_key) as hub:
        status_value = status.value if status else None
        page = hub.send(calls.list_tasks(status=status_value, crew=crew, limit=limit))
    if as_json:
        _print_json(page.items)
        return
    for task in page.items:
        first_line = task.input.splitlines()[0] if task.input else ""
        typer.echo(
            f"{task.id}  {task.status.value:<17}  {task.crew or '-':<10}  "
            f"{task.created_at:%Y-%m-%d %H:%M}  {first_line[:60]}"
        )


@tasks_app.command("show")
@_api_errors
def tasks_show(
    task_id: Annotated[str, typer.Argument(help="Task id")],
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One task: status, request, answer or error, usage and cost."""
    with _hub(url, api_key) as hub:
        task = hub.send(calls.get_task(task_id))
    if as_json:
        _print_json(task)
        return
    typer.echo(f"task {task.id} · crew {task.crew or '(routed)'} · {task.created_at:%c}")
    typer.echo(f"request: {task.input}")
    show_outcome(task, Console())


@tasks_app.command("watch")
@_api_errors
def tasks_watch(
    task_id: Annotated[str, typer.Argument(help="Task id")],
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    cancel_on_interrupt: CancelOption = False,
) -> None:
    """Follow a task from its first event to its end; exits with its status's code."""
    with _hub(url, api_key) as hub:
        raise _follow_and_end(hub, hub.send(calls.get_task(task_id)), cancel_on_interrupt)


@tasks_app.command("cancel")
@_api_errors
def tasks_cancel(
    task_id: Annotated[str, typer.Argument(help="Task id")],
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Cancel a task: a queued one at once, a running one at its next model call."""
    with _hub(url, api_key) as hub:
        task = hub.send(calls.cancel_task(task_id))
    done = task.status is TaskStatus.cancelled
    typer.echo(f"task {task.id} {'cancelled' if done else 'stops at its next model call'}")


@tasks_app.command("retry")
@_api_errors
def tasks_retry(
    task_id: Annotated[str, typer.Argument(help="A failed or cancelled task's id")],
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Run a failed or cancelled task's request again, as a new task linked to it."""
    with _hub(url, api_key) as hub:
        task = hub.send(calls.retry_task(task_id))
    typer.echo(f"task {task.id} queued (a retry of {task_id})")


@actions_app.command("list")
@_api_errors
def actions_list(
    status: Annotated[ActionStatus | None, typer.Option(help="e.g. pending")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task's actions")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many")] = 20,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Proposed changes, newest first: kind, status and what they would do."""
    with _hub(url, api_key) as hub:
        status_value = status.value if status else None
        page = hub.send(calls.list_actions(status=status_value, task_id=task, limit=limit))
    if as_json:
        _print_json(page.items)
        return
    for action in page.items:
        typer.echo(f"{action.id}  {action.status.value:<9}  {action.kind:<22}  {action.summary}")


def _decide(
    action_id: str, reason: str | None, url: str, api_key: str | None, approve: bool
) -> None:
    with _hub(url, api_key) as hub:
        decide = calls.approve_action if approve else calls.reject_action
        action = hub.send(decide(action_id, reason=reason))
    typer.echo(f"action {action.id} {action.status.value}: {action.summary}")
    if action.error is not None:
        typer.secho(f"{action.error.code}: {action.error.message}", fg=typer.colors.RED)


ReasonOption = Annotated[str | None, typer.Option(help="Why, for the audit log")]


@actions_app.command("approve")
@_api_errors
def actions_approve(
    action_id: Annotated[str, typer.Argument(help="Action id")],
    reason: ReasonOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Approve a pending action; it runs once."""
    _decide(action_id, reason, url, api_key, approve=True)


@actions_app.command("reject")
@_api_errors
def actions_reject(
    action_id: Annotated[str, typer.Argument(help="Action id")],
    reason: ReasonOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Reject a pending action; nothing changes."""
    _decide(action_id, reason, url, api_key, approve=False)


@_api_errors
def credentials_put(
    provider: Annotated[str, typer.Argument(help="openai, anthropic, openai_compatible, …")],
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
) -> None:
    """Store a credential read as JSON from stdin (never from the command line), e.g.
    ``echo '{"api_key": "sk-…"}' | opshub credentials put openai``; the provider checks it."""
    try:
        secret = json.loads(sys.stdin.read())
    except ValueError:
        raise fail("stdin is not JSON: pass the secret as a JSON object") from None
    with _hub(url, api_key) as hub:
        stored = hub.send(calls.put_credential(provider, secret=secret))
    typer.echo(
        f"{stored.provider.value} stored · fingerprint {stored.fingerprint} · …{stored.last4}"
    )
    if stored.status is Health.healthy:
        typer.secho("the provider accepted it", fg=typer.colors.GREEN)
        return
    # Stored, but runs may not work with it: said where it can't be missed.
    typer.secho(
        f"\n  {stored.status.value.upper()}: {stored.status_detail or 'no reason given'}\n",
        err=True,
        fg=typer.colors.RED,
        bold=True,
    )
    if stored.status is Health.invalid:
        raise typer.Exit(code=1)
