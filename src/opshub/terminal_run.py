"""``opshub run``: submit a task through the API and follow it live in the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.status import Status


class RunFailed(Exception):
    """The API refused the request or the task did not succeed; the message says why."""


def _api_error(response: httpx.Response) -> RunFailed:
    try:
        error = response.json()["error"]
        return RunFailed(f"{error['code']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        return RunFailed(f"the API answered HTTP {response.status_code}")


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


def _describe(event: dict[str, Any]) -> str | None:
    kind, agent = event["type"], event.get("agent") or "agent"
    if kind == "agent.step" and event.get("status") == "started":
        return f"[bold cyan]{agent}[/] starts working"
    if kind == "tool.call":
        args = json.dumps(event.get("args") or {}, ensure_ascii=False)
        return f"[yellow]→ {event.get('tool')}[/] {args[:200]}"
    if kind == "tool.result":
        if event.get("error"):
            return f"[red]← {event.get('tool')} failed:[/] {str(event['error'])[:200]}"
        return f"[green]← {event.get('tool')}[/] {str(event.get('text', ''))[:200]}"
    if kind == "llm.call":
        usage = event.get("usage") or {}
        return (
            f"[dim]model call {event.get('model', '')}: {usage.get('input_tokens', 0)} in / "
            f"{usage.get('output_tokens', 0)} out[/]"
        )
    if kind == "task.routed":
        crew = event.get("crew")
        return f"[bold]routed to the {crew} crew[/]" if crew else "[bold]the router asks back[/]"
    if kind == "action.proposed":
        status = (event.get("action") or {}).get("status", "pending")
        return f"[magenta]proposed ({status}):[/] {str(event.get('text', ''))[:300]}"
    if kind == "task.retrying":
        return f"[red]retrying:[/] {event.get('error', {}).get('message', '')}"
    return None


def run_task(
    *, url: str, api_key: str, message: str, crew: str | None, console: Console
) -> dict[str, Any]:
    """Submit, follow the events until the task ends, and return the finished task."""
    headers = {"Authorization": f"Bearer {api_key}"}
    body: dict[str, Any] = {"input": message}
    if crew:
        body["crew"] = crew
    with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(30, read=None)) as http:
        response = http.post("/v1/tasks", json=body)
        if response.status_code >= 400:
            raise _api_error(response)
        task_id = response.json()["id"]
        console.print(f"[dim]task {task_id}[/]")
        with (
            Status("queued…", console=console, spinner="dots") as status,
            http.stream("GET", f"/v1/tasks/{task_id}/events") as stream,
        ):
            if stream.status_code >= 400:
                stream.read()
                raise _api_error(stream)
            for event in _events(stream):
                if event["type"] == "task.started":
                    status.update("running…")
                elif event["type"] == "token":
                    status.update("writing…")
                line = _describe(event)
                if line:
                    console.print(line)
                if event["type"] == "task.awaiting_approval":
                    break  # the run is over; people decide the rest
        finished = http.get(f"/v1/tasks/{task_id}")
        if finished.status_code >= 400:
            raise _api_error(finished)
    task: dict[str, Any] = finished.json()
    _show_outcome(task, console)
    if task["status"] not in ("succeeded", "awaiting_approval"):
        error = task.get("error") or {}
        raise RunFailed(f"the task {task['status']}: {error.get('message', 'no reason given')}")
    return task


def _show_outcome(task: dict[str, Any], console: Console) -> None:
    usage = task["usage"]
    if task.get("result"):
        console.print(Panel(Markdown(str(task["result"])), title="answer", border_style="green"))
    console.print(
        f"[dim]{task['status']} · {usage['input_tokens']} input + {usage['output_tokens']} output "
        f"tokens · {usage['cost_usd']} USD ({usage['billed_to'] or 'no model calls'})[/]"
    )
