"""The console under load: how fast an event reaches an open console's page, and how long the
home page takes to render with a large database.

- live: `opshub serve` (API, worker, scheduler; embedded PostgreSQL, no Redis) in a process of
  its own, the fake model server in this one, Debian's chromium with N consoles open on the home
  page (signed in, two per tenant by default). M runs are submitted at once across the tenants;
  their model calls stream for about a second. Each page records (MutationObserver, Date.now())
  when a run's row first shows "running" and "succeeded"; the latency of an event is that
  moment minus the task's started_at / finished_at, written by the worker in the transaction
  that emits task.started / task.succeeded. p50/p99 over every (console, run of its tenant,
  status); a "running" the page never showed (the run ended first) counts as missed.
- home: T tasks across K tenants in the embedded PostgreSQL (COPY; today's share with stored
  steps), then GET /console for signed-in sample tenants through the app in this process
  (httpx ASGI transport: the server's time, no network), p50/p95 per request.

    .venv/bin/python bench/console.py [--consoles 20] [--tenants 10] [--runs 50]
        [--home-tasks 1000000] [--home-tenants 10000] [--requests 300] [--only live|home]
        [--baseline-src DIR] [--rounds 3]

--baseline-src: another checkout's ``src`` (e.g. ``git archive <commit> src | tar -x -C DIR``),
measured side by side in the same run: live runs the hub from each in turn; home alternates
rounds of requests between the two (each in a process of its own, on the same database).

Needs Debian's chromium. Results go to bench/results/console.json (merged per scenario), with the
load average (1 min) at the start and end of each measurement: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.llm import FakeLLMServer  # noqa: E402

from opshub.config import Settings  # noqa: E402
from opshub.db.engine import create_pool, resolve_database_urls, transaction  # noqa: E402
from opshub.db.migrate import migrate  # noqa: E402
from opshub.tenants import service as tenants_service  # noqa: E402

HERE = Path(__file__).parent
WORK = HERE / ".work" / "console"
RESULTS = HERE / "results" / "console.json"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # noqa: S105 - a throw-away local hub
PASSWORD = "bench horse battery"  # noqa: S105
ANSWER = "Final answer: " + " ".join(["three leads wait for a follow-up this week."] * 8)
TERMINAL = ("succeeded", "failed", "cancelled")
SAMPLE_TENANTS = 20  # home: the tenants with a user to sign in as

# Records when each run's row first shows each status on this page, however the page draws it
# (the baseline redrew its panels per event; now the row is patched from the event).
OBSERVER = """
window.__seen = {};
const record = () => {
  const now = Date.now();
  document.querySelectorAll('#recent-runs li[data-task]').forEach(li => {
    const badge = li.querySelector('.status');
    if (!badge) return;
    const key = li.dataset.task + ' ' + badge.textContent.trim();
    if (!(key in window.__seen)) window.__seen[key] = now;
  });
};
new MutationObserver(record).observe(document.body, {childList: true, subtree: true});
record();
"""


def check(condition: bool, message: str = "unexpected answer") -> None:
    if not condition:
        raise RuntimeError(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 1),
        "p95": round(percentile(values, 0.95), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


# --- live -------------------------------------------------------------------------------------


async def live(args: argparse.Namespace, src: Path | None = None) -> dict[str, Any]:
    """``src``: run the hub from that source tree (the baseline) instead of this one."""
    from playwright.async_api import async_playwright

    data_dir = WORK / f"live-{uuid.uuid4().hex[:6]}"
    port = free_port()
    with FakeLLMServer(default_text=ANSWER) as fake:
        env = {
            **os.environ,
            "OPSHUB_DATA_DIR": str(data_dir),
            "OPSHUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "OPSHUB_OPENAI_BASE_URL": f"{fake.base_url}/v1",
            "OPSHUB_ALLOW_INTERNAL_URLS": "true",
            "OPSHUB_CREDENTIAL_CHECK_MINUTES": "0",
            "OPSHUB_MEMORY_EXTRACTION": "false",
            "OPSHUB_WORKER_CONCURRENCY": str(args.runs),
            "OPSHUB_TENANT_REQUESTS_PER_SECOND": "100000",
            "OPSHUB_TENANT_REQUEST_BURST": "100000",
            "OPSHUB_LOG_LEVEL": "warning",
        }
        env.pop("OPSHUB_REDIS_URL", None)
        if src is not None:
            env["PYTHONPATH"] = str(src)
        load_before = os.getloadavg()[0]
        hubs = _start_hub(port, env, split=args.split)
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as api:
                await _wait_ready(api, hubs[0])
                tenants = await _tenants(api, args.tenants)
                fake.default_latency = 0.0
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=shutil.which("chromium"),
                        args=["--headless", "--no-sandbox", "--disable-gpu"],
                    )
                    pages = await _consoles(browser, url, tenants, args.consoles)
                    heard: dict[str, float] = {}
                    listeners = [
                        asyncio.create_task(_listen(url, tenant["headers"], heard))
                        for tenant in tenants
                    ]
                    tasks = await _submit(api, fake, tenants, args.runs)
                    await _until_done(api, tasks)
                    await asyncio.sleep(2.0)  # the last redraws
                    for listener in listeners:
                        listener.cancel()
                    seen = [await page.evaluate("window.__seen") for page, _ in pages]
                    await browser.close()
                latencies = _latencies(tasks, seen, [t for _, t in pages], heard)
        finally:
            for hub in reversed(hubs):
                hub.terminate()
                hub.wait(timeout=60)
    return {
        "setup": f"{args.runs} runs at once across {args.tenants} tenants, {args.consoles} "
        f"consoles on the home page (chromium), "
        f"{'opshub api + opshub worker' if args.split else 'opshub serve'} without Redis, "
        f"worker concurrency "
        f"{args.runs}, streamed answers",
        "event_to_dom_ms": summary(latencies["all"]),
        "event_to_sse_client_ms": summary(
            [
                heard[t["id"]] - datetime.fromisoformat(t["read"]["finished_at"]).timestamp() * 1000
                for t in tasks
                if t["id"] in heard
            ]
        ),
        "dom_after_sse_client_ms": summary(latencies["after_sse_client"]) if heard else {},
        "by_status": {
            status: summary(latencies[status])
            for status in ("running", "succeeded")
            if latencies[status]
        },
        "missed": latencies["missed"],
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


async def _live_side_by_side(args: argparse.Namespace) -> dict[str, Any]:
    """The baseline's hub, then this one's, in the same run."""
    if args.baseline_src is None:
        return await live(args)
    before = await live(args, Path(args.baseline_src))
    after = await live(args)
    return {"before": before, "after": after, "before_src": args.baseline_src}


async def _listen(url: str, headers: dict[str, str], heard: dict[str, float]) -> None:
    """A plain SSE client of the tenant's stream beside the consoles: when each task.succeeded
    frame arrives (so the browser's share of the delay shows apart)."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10.0, read=900.0)) as client,
        client.stream("GET", "/v1/events", headers=headers) as stream,
    ):
        kind = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "task.succeeded":
                heard.setdefault(json.loads(line[6:])["task_id"], time.time() * 1000)


def _start_hub(port: int, env: dict[str, str], *, split: bool) -> list[subprocess.Popen[bytes]]:
    """``opshub serve``; split: ``opshub api`` and ``opshub worker`` apart, so the crews' CPU
    does not hold the pages (domain events still travel by PostgreSQL NOTIFY, no Redis)."""
    opshub = [sys.executable, "-m", "opshub"]
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    quiet = subprocess.DEVNULL
    if not split:
        return [subprocess.Popen([*opshub, "serve", *bind], env=env, stdout=quiet, stderr=quiet)]
    subprocess.run([*opshub, "migrate"], env=env, stdout=quiet, stderr=quiet, check=True)
    return [
        subprocess.Popen([*opshub, "api", *bind], env=env, stdout=quiet, stderr=quiet),
        subprocess.Popen([*opshub, "worker"], env=env, stdout=quiet, stderr=quiet),
    ]


async def _wait_ready(api: httpx.AsyncClient, hub: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        check(hub.poll() is None, "opshub serve exited")
        try:
            if (await api.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise TimeoutError("opshub serve did not become ready")


async def _tenants(api: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    made = []
    for n in range(count):
        email = f"bench-{n}-{uuid.uuid4().hex[:6]}@example.com"
        response = await api.post(
            "/v1/admin/tenants",
            json={"name": f"Bench {n}", "owner_email": email, "password": PASSWORD},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['api_key']}"}
        key = await api.put(
            "/v1/credentials/openai",
            json={"secret": {"api_key": f"sk-bench-{n}-0123456789"}},
            headers=headers,
        )
        key.raise_for_status()
        made.append({"email": email, "headers": headers})
    return made


async def _consoles(browser: Any, url: str, tenants: list[dict[str, Any]], count: int) -> list:
    from playwright.async_api import expect

    pages = []
    for n in range(count):
        tenant = tenants[n % len(tenants)]
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{url}/console/login")
        await page.get_by_label("E-mail").fill(tenant["email"])
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        # A locator, not wait_for_function: the console's CSP refuses the eval its polling uses.
        await expect(page.locator("#live-state")).to_have_text("Live", timeout=60_000)
        await page.evaluate(OBSERVER)
        pages.append((page, n % len(tenants)))
    return pages


async def _submit(
    api: httpx.AsyncClient, fake: FakeLLMServer, tenants: list[dict[str, Any]], runs: int
) -> list[dict[str, Any]]:
    fake.script_openai(ANSWER, usage=(400, 60), latency=1.0, times=runs)

    async def one(n: int) -> dict[str, Any]:
        owner = n % len(tenants)
        response = await api.post(
            "/v1/tasks",
            json={"crew": "assistant", "input": f"Which leads wait? ({n})"},
            headers=tenants[owner]["headers"],
        )
        response.raise_for_status()
        return {"id": response.json()["id"], "tenant": owner, "headers": tenants[owner]["headers"]}

    return list(await asyncio.gather(*(one(n) for n in range(runs))))


async def _until_done(api: httpx.AsyncClient, tasks: list[dict[str, Any]]) -> None:
    deadline = time.monotonic() + 600
    for task in tasks:
        while True:
            state = (await api.get(f"/v1/tasks/{task['id']}", headers=task["headers"])).json()
            if state["status"] in TERMINAL:
                task["read"] = state
                break
            check(time.monotonic() < deadline, "runs did not finish in 10 minutes")
            await asyncio.sleep(0.5)


def _latencies(
    tasks: list[dict[str, Any]],
    seen: list[dict[str, int]],
    watching: list[int],
    heard: dict[str, float],
) -> dict[str, Any]:
    """Per console and run of its tenant: page time of each status minus the worker's time; and
    for "succeeded", minus when the plain SSE client got the frame (the browser's own share)."""
    out: dict[str, Any] = {
        "all": [],
        "running": [],
        "succeeded": [],
        "after_sse_client": [],
        "missed": {},
    }
    for page_seen, tenant in zip(seen, watching, strict=True):
        for task in (t for t in tasks if t["tenant"] == tenant):
            read = task["read"]
            for status, field in (("running", "started_at"), ("succeeded", "finished_at")):
                at = page_seen.get(f"{task['id']} {status}")
                if at is None or read.get(field) is None:
                    # "running" goes unseen when the run ended before the page redrew.
                    out["missed"][status] = out["missed"].get(status, 0) + 1
                    continue
                worker_ms = datetime.fromisoformat(read[field]).timestamp() * 1000
                out[status].append(at - worker_ms)
                out["all"].append(at - worker_ms)
                if status == "succeeded" and task["id"] in heard:
                    out["after_sse_client"].append(at - heard[task["id"]])
    return out


# --- home -------------------------------------------------------------------------------------


async def home(args: argparse.Namespace) -> dict[str, Any]:
    setup = (
        f"{args.home_tasks:,} tasks across {args.home_tenants:,} tenants (today's with stored "
        f"steps), GET /console for {SAMPLE_TENANTS} signed-in tenants in turn, in-process (ASGI), "
        "one at a time"
    )
    if args.baseline_src is not None and not args.home_worker:
        # Each side in a process of its own: this one keeps no hold on the embedded database.
        return _home_side_by_side(args, setup)
    settings = Settings(
        data_dir=WORK / "home",
        redis_url=None,
        tenant_requests_per_second=100_000,
        tenant_request_burst=100_000,
        credential_check_minutes=0,
    )
    urls = resolve_database_urls(settings)
    if not args.no_migrate:
        await migrate(urls)
    samples = await _seed_home(urls, args.home_tasks, args.home_tenants)
    if args.home_worker:
        print(json.dumps(await _measure_home(settings, urls, samples, args.requests)))
        return {}
    load_before = os.getloadavg()[0]
    timings = await _measure_home(settings, urls, samples, args.requests)
    return {
        "setup": f"{setup}, {args.requests} requests",
        "server_ms": summary(timings),
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


def _home_side_by_side(args: argparse.Namespace, setup: str) -> dict[str, Any]:
    """Rounds of requests from the baseline's code and this one's in turn, each round in a
    process of its own on the same database, so that the machine's load falls on both alike."""
    per_round = args.requests // args.rounds
    sources = {"before": Path(args.baseline_src), "after": ROOT / "src"}
    timings: dict[str, list[float]] = {label: [] for label in sources}
    loads: dict[str, list[float]] = {label: [] for label in sources}
    command = [sys.executable, __file__, "--only", "home", "--home-worker"]
    command += ["--home-tasks", str(args.home_tasks), "--home-tenants", str(args.home_tenants)]
    # This checkout migrates (and seeds) first; the baseline's code then runs on its schema,
    # whose migrations it may not know (they only add).
    subprocess.run([*command, "--requests", "0"], capture_output=True, check=True)
    command += ["--requests", str(per_round), "--no-migrate"]
    for _ in range(args.rounds):
        for label, src in sources.items():
            loads[label].append(os.getloadavg()[0])
            done = subprocess.run(
                command,
                env={**os.environ, "PYTHONPATH": str(src)},
                capture_output=True,
                text=True,
                check=True,
            )
            timings[label] += json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "setup": f"{setup}; {args.rounds} rounds of {per_round} requests from each of: before "
        f"(the code of {args.baseline_src}), after (this checkout), in turn",
        "server_ms": {label: summary(values) for label, values in timings.items()},
        "load_average_1min_at_each_round": loads,
        "raw_ms": {label: [round(v, 2) for v in values] for label, values in timings.items()},
    }


async def _measure_home(
    settings: Settings, urls: Any, samples: list[str], requests: int
) -> list[float]:
    from fastapi import FastAPI
    from httpx import ASGITransport

    import opshub
    from opshub.app import create_app

    print(f"measuring {opshub.__file__}", file=sys.stderr)
    app: FastAPI = create_app(settings, urls)
    timings: list[float] = []
    async with app.router.lifespan_context(app):
        clients = []
        for email in samples:
            client = httpx.AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub")
            form = await client.get("/console/login")
            token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            signed = await client.post(
                "/console/login",
                data={"email": email, "password": PASSWORD, "csrf_token": token},
            )
            check(signed.status_code == 303, signed.text)
            clients.append(client)
        for client in clients:  # warm-up: one page each
            check((await client.get("/console")).status_code == 200)
        for n in range(requests):
            client = clients[n % len(clients)]
            started = time.perf_counter()
            response = await client.get("/console")
            timings.append((time.perf_counter() - started) * 1000)
            check(response.status_code == 200)
        for client in clients:
            await client.aclose()
    return timings


async def _seed_home(urls: Any, total: int, tenant_count: int) -> list[str]:
    """Tenants (a few with a user to sign in as), their tasks spread over 90 days, and today's
    runs with the steps their agents stored. Skipped when the database already has them."""
    pool = await create_pool(urls.owner, size=2)
    emails: list[str] = []
    async with transaction(pool) as conn:
        have = await conn.fetchval("SELECT count(*) FROM tasks")
        if have >= total:
            emails = [
                row["email"]
                for row in await conn.fetch(
                    "SELECT email FROM users WHERE email LIKE 'home-%' ORDER BY email"
                )
            ]
    if emails:  # seeded before (the pool closes once its connection is back)
        await pool.close()
        return emails
    async with transaction(pool) as conn:
        for n in range(SAMPLE_TENANTS):
            email = f"home-{n:02d}@example.com"
            await tenants_service.create_tenant(
                conn, name=f"Home {n}", owner_email=email, password=PASSWORD
            )
            emails.append(email)
        fillers = [(uuid.uuid4(), f"Filler {n}") for n in range(tenant_count - SAMPLE_TENANTS)]
        await conn.copy_records_to_table("tenants", records=fillers, columns=["id", "name"])
        tenant_ids = [row["id"] for row in await conn.fetch("SELECT id FROM tenants")]
    now = datetime.now(UTC)
    crews = ("marketing", "analytics", "ecommerce", "operations", "assistant", None)
    statuses = ("succeeded",) * 8 + ("failed", "cancelled")
    per_tenant = total // len(tenant_ids)
    batch: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    async with pool.acquire() as conn:
        for tenant_id in tenant_ids:
            for i in range(per_tenant):
                # One in ten of a tenant's tasks is today's; the rest spread over 90 days.
                age = timedelta(minutes=i * 7) if i % 10 == 0 else timedelta(hours=(i * 21) % 2160)
                created = now - age
                task_id = uuid.uuid4()
                crew = crews[i % len(crews)]
                status = statuses[i % len(statuses)]
                batch.append(
                    (
                        task_id,
                        tenant_id,
                        crew,
                        "Weekly numbers",
                        status,
                        created,
                        created,
                        created + timedelta(seconds=20 + i % 40),
                        400,
                        60,
                        0.000469,
                    )
                )
                if i % 10 == 0 and crew is not None:
                    usage = {"input_tokens": 400, "output_tokens": 60}
                    for seq, (type_, data) in enumerate(
                        (
                            ("agent.step", {"agent": "Operations assistant", "status": "started"}),
                            (
                                "llm.call",
                                {
                                    "agent": "Operations assistant",
                                    "model": "gpt-4o-mini",
                                    "usage": usage,
                                    "cost_usd": "0.000469",
                                    "latency_ms": 900,
                                },
                            ),
                        ),
                        start=1,
                    ):
                        events.append((tenant_id, task_id, seq, type_, created, data))
            if len(batch) >= 50_000:
                await _copy(conn, batch, events)
        await _copy(conn, batch, events)
        await conn.execute("ANALYZE")
    await pool.close()
    return emails


async def _copy(conn: Any, batch: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        "tasks",
        records=batch,
        columns=[
            "id",
            "tenant_id",
            "crew",
            "input",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        ],
    )
    # COPY has no binary jsonb encoder: the steps travel as text and are cast on the way in.
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS steps (tenant_id uuid, task_id uuid, seq int,"
        " type text, ts timestamptz, data text)"
    )
    await conn.copy_records_to_table(
        "steps",
        records=[(*row[:5], json.dumps(row[5])) for row in events],
        columns=["tenant_id", "task_id", "seq", "type", "ts", "data"],
    )
    await conn.execute(
        "INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data)"
        " SELECT tenant_id, task_id, seq, type, ts, data::jsonb FROM steps"
    )
    await conn.execute("TRUNCATE steps")
    batch.clear()
    events.clear()


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consoles", type=int, default=20)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--home-tasks", type=int, default=1_000_000)
    parser.add_argument("--home-tenants", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--only", choices=("live", "home"))
    parser.add_argument(
        "--split", action="store_true", help="live: opshub api and opshub worker apart"
    )
    parser.add_argument("--baseline-src", help="another checkout's src, measured side by side")
    parser.add_argument("--rounds", type=int, default=3, help="home, side by side: rounds")
    parser.add_argument("--home-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-migrate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.home_worker:
        asyncio.run(home(args))
        return
    if args.baseline_src:
        args.baseline_src = str(Path(args.baseline_src).resolve())
    WORK.mkdir(parents=True, exist_ok=True)
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    report |= {
        "benchmark": "console",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; shared by eight engineers while it ran",
    }
    for name, scenario in (("live", _live_side_by_side), ("home", home)):
        if args.only in (None, name):
            result = asyncio.run(scenario(args))
            result["run_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            report[f"{name}-split" if name == "live" and args.split else name] = result
            print(json.dumps({name: result}, indent=2), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
