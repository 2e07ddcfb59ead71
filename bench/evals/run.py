"""Crew evals: each scenario's request run through the hub against a real model, and scored.

    .venv/bin/python bench/evals/run.py [--scenario NAME ...] [--fake-model] [--json out.json]
        [--provider openai|anthropic] [--timeout 600] [--log-level ERROR]

The hub runs in this process (API and worker, an embedded PostgreSQL in a temporary directory);
the services the tools call are the repo's fakes (seeds.py); the model is real. The key comes
from the environment: OPSHUB_EVAL_OPENAI_API_KEY (model OPSHUB_EVAL_MODEL, default gpt-4.1-mini)
or OPSHUB_EVAL_ANTHROPIC_API_KEY (default claude-sonnet-4-5). Each scenario gets a tenant of its
own that stores the key as its own (BYOK); it is never printed. ``--fake-model`` puts the local
fake model server in its place, scripted with nothing: the plumbing runs, the checks fail.

Without a key or ``--fake-model`` it validates every scenario file, says how to run, exits 0.
The exit code is 0 whatever the scores; 1 when a scenario could not be run (the hub, a seed or
the API broke), 2 for bad arguments or scenario files. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from httpx import ASGITransport, AsyncClient
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # bench.evals and tests.fakes: evals run from a checkout

from bench.evals import scenarios as sc  # noqa: E402

KEY_VARS = {"openai": "OPSHUB_EVAL_OPENAI_API_KEY", "anthropic": "OPSHUB_EVAL_ANTHROPIC_API_KEY"}
MODEL_VAR = "OPSHUB_EVAL_MODEL"
DEFAULT_MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-sonnet-4-5"}
FAKE_ANSWER = "This is the local fake model's fixed reply; no model read the request."
REJECTION = "Evaluation run: proposals are scored, never carried out."
ENDED = frozenset({"awaiting_approval", "succeeded", "failed", "cancelled"})
TERMINAL = ENDED - {"awaiting_approval"}


@dataclass(frozen=True)
class Model:
    provider: str
    name: str
    key: str = field(repr=False)
    fake: bool = False


def pick_model(args: argparse.Namespace, env: Mapping[str, str]) -> Model | None:
    providers = [p for p in KEY_VARS if env.get(KEY_VARS[p])]
    provider = args.provider or (providers[0] if providers else "openai")
    name = env.get(MODEL_VAR) or DEFAULT_MODELS[provider]
    if args.fake_model:
        return Model(provider, name, f"sk-fake-eval-{uuid.uuid4().hex}", fake=True)
    key = env.get(KEY_VARS[provider])
    return Model(provider, name, key) if key else None


@dataclass
class Outcome:
    scenario: sc.Scenario
    run: sc.Observed | None = None
    checks: list[sc.Check] = field(default_factory=list)
    broken: str | None = None  # the plumbing failed: why

    @property
    def passed(self) -> bool:
        return self.broken is None and all(c.passed for c in self.checks)


class Broken(RuntimeError):
    """The hub, a seed or the API did not do its part (not the model's fault)."""


class KeyRefused(Broken):
    """The model provider refused the eval key: no scenario can run."""


def _ok(response: Any, what: str) -> dict[str, Any]:
    if not response.is_success:
        raise Broken(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def _wait(
    client: AsyncClient, task_id: str, within: float, until: frozenset[str] = ENDED
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        task = _ok(await client.get(f"/v1/tasks/{task_id}"), "reading the task")
        if task["status"] in until or time.monotonic() > deadline:
            return task
        await asyncio.sleep(0.25)


async def _events(client: AsyncClient, task_id: str) -> list[dict[str, Any]]:
    """The run's events; the stream ends with the task (in-process, it arrives whole)."""
    response = await asyncio.wait_for(client.get(f"/v1/tasks/{task_id}/events"), 60)
    if not response.is_success:
        raise Broken(f"reading the events: HTTP {response.status_code}")
    lines = response.text.splitlines()
    return [json.loads(line[5:]) for line in lines if line.startswith("data:")]


def _client(app: Any, api_key: str) -> AsyncClient:
    return AsyncClient(
        transport=ASGITransport(app=app),
        base_url="http://opshub",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )


@dataclass(frozen=True)
class Hub:
    app: Any  # the FastAPI app, API and worker in this process
    admin: AsyncClient  # with the platform admin token
    services: Any  # seeds.Services
    model: Model
    fake_llm: Any | None  # tests.fakes.llm.FakeLLMServer with --fake-model

    def client(self, api_key: str) -> AsyncClient:
        return _client(self.app, api_key)


async def _tenant(hub: Hub, scenario: sc.Scenario) -> str:
    """A tenant of the scenario's own with the model key stored as its own; its API key."""
    owner = {
        "name": f"Eval {scenario.name}",
        "owner_email": f"eval-{uuid.uuid4().hex[:10]}@example.com",
        "password": secrets.token_urlsafe(16),
    }
    api_key: str = _ok(await hub.admin.post("/v1/admin/tenants", json=owner), "a tenant")["api_key"]
    provider = hub.model.provider
    async with hub.client(api_key) as client:
        secret = {"api_key": hub.model.key}
        stored = await client.put(f"/v1/credentials/{provider}", json={"secret": secret})
    health = stored.json().get("status") if stored.is_success else None
    if health != "healthy":
        raise KeyRefused(
            f"the {provider} key was not accepted (HTTP {stored.status_code}, status {health}): "
            f"check {KEY_VARS[provider]} and the network"
        )
    return api_key


async def run_one(hub: Hub, scenario: sc.Scenario, within: float) -> sc.Observed:
    from bench.evals import seeds

    async with (
        hub.client(await _tenant(hub, scenario)) as client,
        seeds.seeded(scenario.seed, client, hub.services),
    ):
        started = time.monotonic()
        body = {"crew": scenario.crew, "input": scenario.request}
        task_id = _ok(await client.post("/v1/tasks", json=body), "submitting")["id"]
        task = await _wait(client, task_id, within)
        seconds = time.monotonic() - started
        if task["status"] not in ENDED:
            await client.post(f"/v1/tasks/{task_id}/cancel")
            await _wait(client, task_id, 60, TERMINAL)
            task = {**task, "error": {"code": "timeout", "message": f"over {within:.0f} s"}}
        page = await client.get("/v1/actions", params={"task_id": task_id, "limit": 100})
        actions = _ok(page, "listing the actions")["items"]
        for action in actions:  # decided, so the task ends and its event stream with it
            if action["status"] == "pending":
                reject = f"/v1/actions/{action['id']}/reject"
                _ok(await client.post(reject, json={"reason": REJECTION}), "rejecting")
        await _wait(client, task_id, 60, TERMINAL)
        events = await _events(client, task_id)
    return dataclasses.replace(sc.observe(task, events, actions), seconds=seconds)


def hub_settings(data_dir: Path, model: Model, urls: dict[str, str], level: str) -> Any:
    from opshub.config import Settings

    defaults = dict(Settings.model_fields["default_models"].default)
    return Settings(
        data_dir=data_dir,
        database_url=None,
        redis_url=None,
        vault_addr=None,
        admin_token=secrets.token_urlsafe(24),
        allow_internal_urls=True,  # the fakes listen on loopback
        credential_check_minutes=0,
        memory_extraction=False,  # the crews' own model calls only
        default_models={**defaults, model.provider: model.name},
        log_level=level,
        log_json=False,
        **urls,
    )


@asynccontextmanager
async def running_hub(model: Model, level: str = "ERROR") -> AsyncIterator[Hub]:
    """The hub with its worker on a fresh embedded database, and the fakes it calls."""
    from bench.evals import seeds
    from tests.fakes.llm import FakeLLMServer

    from opshub.app import create_app
    from opshub.db.embedded import stop_embedded_postgres
    from opshub.db.engine import resolve_database_urls
    from opshub.db.migrate import migrate
    from opshub.logging import configure_logging

    configure_logging(level=level, json=False)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ohe-", dir="/tmp"))
        services = stack.enter_context(seeds.running_services())
        urls = services.settings()
        fake_llm = None
        if model.fake:
            fake_llm = stack.enter_context(FakeLLMServer(default_text=FAKE_ANSWER))
            urls |= {"openai_base_url": f"{fake_llm.base_url}/v1",
                     "anthropic_base_url": fake_llm.base_url}  # fmt: skip
        settings = hub_settings(Path(tmp), model, urls, level)  # tmp: short, for the socket
        database = resolve_database_urls(settings)  # starts the embedded PostgreSQL
        stack.callback(stop_embedded_postgres, settings.data_dir)  # before tmp goes
        await migrate(database)
        app = create_app(settings, database, run_workers=True)
        admin_token = settings.admin_token.get_secret_value()
        async with app.router.lifespan_context(app), _client(app, admin_token) as admin:
            yield Hub(app, admin, services, model, fake_llm)


async def run_all(
    chosen: list[sc.Scenario], model: Model, within: float, level: str, console: Console
) -> list[Outcome]:
    outcomes = [Outcome(scenario) for scenario in chosen]
    async with running_hub(model, level) as hub:
        for outcome in outcomes:
            console.print(f"[dim]running {outcome.scenario.name} ...[/]")
            try:
                outcome.run = await run_one(hub, outcome.scenario, within)
                outcome.checks = sc.score(outcome.scenario, outcome.run)
            except Exception as exc:  # the plumbing: reported, the other scenarios still run
                outcome.broken = f"{type(exc).__name__}: {exc}"
                Console(stderr=True).print_exception(max_frames=4)  # never with locals
                if isinstance(exc, KeyRefused):
                    for rest in outcomes:
                        rest.broken = rest.broken or "not run: the model key was not accepted"
                    break
    return outcomes


def scorecard(outcomes: list[Outcome], model: Model, console: Console) -> None:
    checks = Table("Scenario", "Check", "Result", "Detail", title="Checks", title_justify="left")
    for o in outcomes:
        if o.broken:
            checks.add_row(o.scenario.name, "runs", "[red]ERROR[/]", o.broken)
        for c in o.checks:
            result = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
            checks.add_row(o.scenario.name, c.name, result, c.detail)
        checks.add_section()
    console.print(checks)
    label = f"{model.provider} {model.name}" + (" (fake model server)" if model.fake else "")
    summary = Table(
        "Scenario", "Crew", "Status", "Checks", "Tokens in", "Tokens out", "Cost USD", "Seconds",
        title=f"Scorecard: {label}", title_justify="left",
    )  # fmt: skip
    for o in outcomes:
        r = o.run
        status = "[red]error[/]" if o.broken else (r.status if r else "")
        passed = sum(c.passed for c in o.checks)
        crew = o.scenario.crew or f"{(r.crew if r else None) or '-'} (routed)"
        summary.add_row(
            o.scenario.name, crew, status,
            f"{passed}/{len(o.checks)}", f"{r.input_tokens:,}" if r else "",
            f"{r.output_tokens:,}" if r else "", f"{r.cost_usd:.4f}" if r else "",
            f"{r.seconds:.1f}" if r else "",
        )  # fmt: skip
    runs = [o.run for o in outcomes if o.run]
    passed = sum(c.passed for o in outcomes for c in o.checks)
    total = sum(len(o.checks) for o in outcomes)
    summary.add_section()
    summary.add_row(
        "Total", "", f"{sum(o.passed for o in outcomes)}/{len(outcomes)} passed",
        f"{passed}/{total}", f"{sum(r.input_tokens for r in runs):,}",
        f"{sum(r.output_tokens for r in runs):,}", f"{sum(r.cost_usd for r in runs):.4f}",
        f"{sum(r.seconds for r in runs):.1f}",
    )  # fmt: skip
    console.print(summary)


def report(outcomes: list[Outcome], model: Model) -> dict[str, Any]:
    """Everything the scorecard shows and more (tools, proposals, answers); never the key."""
    scenarios = [
        {"scenario": o.scenario.name, "passed": o.passed, "broken": o.broken,
         "checks": [dataclasses.asdict(c) for c in o.checks],
         "run": dataclasses.asdict(o.run) if o.run else None}
        for o in outcomes
    ]  # fmt: skip
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return {"at": at, "provider": model.provider, "model": model.name, "fake_model": model.fake,
            "scenarios": scenarios}  # fmt: skip


def how_to_run(names: list[str], console: Console) -> None:
    console.print(f"{len(names)} scenario files are valid: {', '.join(names)}.", soft_wrap=True)
    console.print(
        "No evaluation key is set, so nothing ran. To score the crews against a real model:\n"
        f"  export {KEY_VARS['openai']}=...   # model: {MODEL_VAR}, default "
        f"{DEFAULT_MODELS['openai']}\n"
        f"  (or {KEY_VARS['anthropic']}=...; default {DEFAULT_MODELS['anthropic']})\n"
        "  .venv/bin/python bench/evals/run.py [--scenario NAME] [--json out.json]\n"
        "To check the plumbing only, against the local fake model: add --fake-model.",
        highlight=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", default=[], help="Run only this one.")
    parser.add_argument("--fake-model", action="store_true", help="The local fake model.")
    parser.add_argument("--provider", choices=sorted(KEY_VARS), help="When both keys are set.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds per scenario.")
    parser.add_argument("--log-level", default="ERROR", help="The hub's logs, on stderr.")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console.width = 160
    try:
        every = sc.load_all()
    except sc.ScenarioError as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        return 2
    names = [s.name for s in every]
    if unknown := sorted(set(args.scenario) - set(names)):
        console.print(f"[red]unknown scenario {', '.join(unknown)}; one of {', '.join(names)}[/]")
        return 2
    chosen = [s for s in every if not args.scenario or s.name in args.scenario]
    model = pick_model(args, os.environ)
    if model is None:
        how_to_run(names, console)
        return 0
    outcomes = asyncio.run(run_all(chosen, model, args.timeout, args.log_level, console))
    scorecard(outcomes, model, console)
    if args.json:
        args.json.write_text(json.dumps(report(outcomes, model), indent=2, default=str) + "\n")
    return 1 if any(o.broken for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
