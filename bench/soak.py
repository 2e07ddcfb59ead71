"""A compressed soak: many tasks across many tenants through real processes while a worker is
restarted on a clock and some model calls fail; then every task must have completed exactly once.

Real processes throughout: the embedded PostgreSQL (in bench/.work/soak), a `redis-server` of
this script's own, one `opshub api`, two `opshub worker` processes and the fake model server in
a process of its own, failing every `--fail-every`-th chat call with a 500 (1 % by default).
Model retries are off (`OPSHUB_LLM_MAX_RETRIES=0`), so each failure costs its task an attempt.
Every `--restart-every` seconds (on the clock, from the start of the last restart) one worker is
stopped — SIGTERM and SIGKILL in turn — and a new one started in its place; a restart waits for
the previous replacement to be up (a worker's start-up, CrewAI's import, takes tens of seconds
on a loaded machine), so there are never two workers down at once.

Meanwhile:
- tasks are submitted at `--rate` a second, round-robin over the tenants;
- a reader lists a tenant's tasks (`GET /v1/tasks?limit=20`) as fast as it is answered: the API's
  p50/p99 under load;
- every 5 s: the API's and each worker's RSS and opshub's PostgreSQL connections; the slope of
  each over the run (least squares, per minute) says whether it grows. The fake model is asked
  for its counts then too (it forgets what it told, so it doesn't grow over a long soak), and
  progress goes to stderr every minute.

At the end: each task succeeded, exactly one `task.succeeded` outbox event and one usage record
per task (a run retried after a failed call or a lost worker is still billed once).

    nice .venv/bin/python bench/soak.py [--tasks 10000] [--tenants 50] [--rate 6]
        [--restart-every 60] [--fail-every 100] [--concurrency 16] [--max-seconds 3600]

The completion check counts the unfinished rows (the soak empties the tasks table first, so every
row is the soak's); the exactly-once check runs once, at the end, over every task's id.

Results go to bench/results/soak.json (or `--results`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.tenants import seed_tenants  # noqa: E402 - once the repository is on the path

HERE = Path(__file__).parent
WORK = HERE / ".work" / "soak"
RESULTS = HERE / "results" / "soak.json"
ANSWER = "Final answer: follow up with Cedar Dental first; the other two are scheduled."
SAMPLE_SECONDS = 5.0
# The soak empties the tasks table first: every row is one of its tasks.
UNFINISHED = "SELECT count(*) FROM tasks WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 60, 3)


def rss_mb(pid: int) -> float:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).memory_info().rss / 2**20
    return float("nan")


# -- the fake model, in a process of its own ---------------------------------------------------
def serve_fake(fail_every: int) -> None:
    """`soak.py _fake N`: print the port, fail every N-th chat call; a line in → stats out."""
    from tests.fakes.llm import FakeLLMError, FakeLLMServer, RecordedRequest

    class FlakyModel(FakeLLMServer):
        def __init__(self) -> None:
            super().__init__(default_text=ANSWER)
            self.calls = itertools.count(1)
            self.failed = 0

        async def _answer(self, req: RecordedRequest, raw: bytes, family: str | None) -> Any:
            if family == "openai" and next(self.calls) % fail_every == 0:
                self.failed += 1
                raise FakeLLMError(500)
            return await super()._answer(req, raw, family)

    with FlakyModel() as fake:
        print(fake.port, flush=True)
        for _ in sys.stdin:
            calls = len(fake.requests_for("/v1/chat/completions"))
            print(json.dumps({"calls": calls, "failed": fake.failed}), flush=True)
            fake.reset()  # the requests it keeps would grow for the whole soak
            fake.failed = 0  # told, so forgotten too


class Fake:
    def __init__(self, fail_every: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "_fake", str(fail_every)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.base_url = f"http://127.0.0.1:{int(self._line())}/v1"
        self.calls = self.failed = 0

    def _line(self) -> str:
        assert self.process.stdout is not None  # noqa: S101
        return self.process.stdout.readline()

    def collect(self) -> None:
        """Add up what the fake saw since the last time (it forgets as it tells)."""
        assert self.process.stdin is not None  # noqa: S101
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        stats = json.loads(self._line())
        self.calls += stats["calls"]
        self.failed += stats["failed"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=15)


# -- opshub processes ---------------------------------------------------------------------------
@dataclass
class Hub:
    owner_url: str
    app_url: str
    redis_url: str
    fake: Fake
    concurrency: int
    api: subprocess.Popen[bytes] | None = None
    base: str = ""
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    restarts: list[dict[str, Any]] = field(default_factory=list)
    started: int = 0

    def env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")},
            "OPSHUB_DATABASE_URL": self.owner_url,
            "OPSHUB_DATABASE_APP_URL": self.app_url,
            "OPSHUB_DATA_DIR": str(WORK),
            "OPSHUB_REDIS_URL": self.redis_url,
            "OPSHUB_OPENAI_BASE_URL": self.fake.base_url,
            "OPSHUB_ALLOW_INTERNAL_URLS": "true",
            "OPSHUB_CREDENTIAL_CHECK_MINUTES": "0",
            "OPSHUB_LLM_MAX_RETRIES": "0",
            "OPSHUB_MEMORY_EXTRACTION": "false",
            "OPSHUB_TASK_LEASE_SECONDS": "20",  # a SIGKILLed worker's tasks rerun after it
            "OPSHUB_TASK_RETRY_BACKOFF_SECONDS": "1",
            "OPSHUB_WORKER_SHUTDOWN_GRACE_SECONDS": "10",
            "OPSHUB_TENANT_REQUESTS_PER_SECOND": "1000",  # the soak is not about the API limit
            "OPSHUB_LOG_LEVEL": "WARNING",
            "OPSHUB_PROCESSES": "1",  # a worker is one process: the one restarted and measured
        }

    def start_api(self) -> None:
        from tests.fakes.server import free_port

        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.api = subprocess.Popen(
            [sys.executable, "-m", "opshub", "api", "--port", str(port)],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=(WORK / "api.log").open("ab"),
        )
        deadline = time.monotonic() + 600  # a loaded machine, a niced soak
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise SystemExit("opshub api did not start; see bench/.work/soak/api.log")

    def start_worker(self) -> Path:
        """Start a worker; its log, which says "worker started" once it claims."""
        self.started += 1
        log = WORK / f"worker-{self.started:02d}.log"
        worker = subprocess.Popen(
            [sys.executable, "-m", "opshub", "worker", "--concurrency", str(self.concurrency)],
            env={**self.env(), "OPSHUB_LOG_LEVEL": "INFO"},
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        self.workers.append(worker)
        return log

    async def started_up(self, logs: list[Path], within: float = 600) -> float:
        """Seconds until every one of ``logs`` says its worker started (CrewAI imported)."""
        began = time.monotonic()
        while not all("worker started" in log.read_text(errors="replace") for log in logs):
            if time.monotonic() - began > within:
                raise SystemExit("a worker did not start; see bench/.work/soak/worker-*.log")
            await asyncio.sleep(0.5)
        return round(time.monotonic() - began, 1)

    async def restart_one(self, at: float) -> None:
        """Stop the oldest worker (SIGTERM and SIGKILL in turn) and start another."""
        oldest = self.workers.pop(0)
        how = signal.SIGKILL if len(self.restarts) % 2 else signal.SIGTERM
        oldest.send_signal(how)
        code = await asyncio.to_thread(oldest.wait, 60)
        took = await self.started_up([self.start_worker()])
        self.restarts.append(
            {"at_s": round(at, 1), "signal": how.name, "exit": code, "new_one_started_in_s": took}
        )

    def stop(self) -> None:
        for process in [*self.workers, *([self.api] if self.api else [])]:
            process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *([self.api] if self.api else [])]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def submit_all(
    client: httpx.AsyncClient, keys: list[str], tasks: int, rate: float
) -> list[tuple[str, str]]:
    """(tenant key, task id) of every task, offered at ``rate`` a second."""
    submitted: list[tuple[str, str]] = []
    began = time.monotonic()
    for n in range(tasks):
        await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
        key = keys[n % len(keys)]
        response = await client.post(
            "/v1/tasks", json={"crew": "assistant", "input": f"Soak task {n}"}, headers=bearer(key)
        )
        if response.status_code != 202:
            raise SystemExit(f"submitting failed: {response.status_code} {response.text}")
        submitted.append((key, response.json()["id"]))
    return submitted


async def read_load(
    client: httpx.AsyncClient, keys: list[str], stop: asyncio.Event, latencies: list[float]
) -> None:
    for n in itertools.count():
        if stop.is_set():
            return
        started = time.perf_counter()
        response = await client.get("/v1/tasks?limit=20", headers=bearer(keys[n % len(keys)]))
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"a read failed: {response.status_code} {response.text}")


async def sample(
    hub: Hub,
    pool: asyncpg.Pool,
    began: float,
    stop: asyncio.Event,
    out: dict[str, list[Any]],
    loads: list[float],
) -> None:
    while not stop.is_set():
        at = time.monotonic() - began
        assert hub.api is not None  # noqa: S101
        connections = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        workers = [rss_mb(w.pid) for w in hub.workers]
        out["api_rss_mb"].append((at, rss_mb(hub.api.pid)))
        out["workers_rss_mb"].append((at, round(sum(workers), 1)))
        out["db_connections"].append((at, float(connections)))
        loads.append(os.getloadavg()[0])
        await asyncio.to_thread(hub.fake.collect)
        if len(out["db_connections"]) % int(60 / SAMPLE_SECONDS) == 0:
            left = await pool.fetchval(UNFINISHED)
            print(  # progress, for whoever watches a long soak
                f"{at:6.0f} s: {left} unfinished, {len(hub.restarts)} restarts, "
                f"{hub.fake.calls} model calls ({hub.fake.failed} failed), "
                f"load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)


async def restarter(hub: Hub, every: float, began: float, stop: asyncio.Event) -> None:
    """A restart every ``every`` seconds on the clock (later if a replacement is slow to start)."""
    next_at = began + every
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
        if stop.is_set():
            return
        started = time.monotonic()
        await hub.restart_one(started - began)
        next_at = started + every


async def all_finished(pool: asyncpg.Pool, within: float) -> bool:
    """Whether every task finished within ``within`` seconds (the run is checked either way)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await pool.fetchval(UNFINISHED) == 0:
            return True
        await asyncio.sleep(2)
    return False


async def verify(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> dict[str, Any]:
    statuses = dict(
        await pool.fetch(
            "SELECT status, count(*) FROM tasks WHERE id = ANY($1::uuid[]) GROUP BY status", ids
        )
    )
    events = await pool.fetch(
        "SELECT (data->>'task_id')::uuid AS id, count(*) AS n FROM outbox"
        " WHERE event_type = 'task.succeeded' AND (data->>'task_id')::uuid = ANY($1::uuid[])"
        " GROUP BY 1",
        ids,
    )
    usage = await pool.fetch(
        "SELECT task_id, count(*) AS n FROM usage_records WHERE task_id = ANY($1::uuid[])"
        " GROUP BY 1",
        ids,
    )
    attempts = dict(
        await pool.fetch(
            "SELECT attempt, count(*) FROM tasks WHERE id = ANY($1::uuid[]) GROUP BY attempt", ids
        )
    )
    return {
        "statuses": statuses,
        "attempts": {str(k): v for k, v in sorted(attempts.items())},
        "succeeded_events_once": sum(row["n"] == 1 for row in events),
        "succeeded_events_more_than_once": sum(row["n"] > 1 for row in events),
        "billed_once": sum(row["n"] == 1 for row in usage),
        "billed_more_than_once": sum(row["n"] > 1 for row in usage),
        "exactly_once": statuses == {"succeeded": len(ids)}
        and len(events) == len(ids)
        and all(row["n"] == 1 for row in events)
        and len(usage) == len(ids)
        and all(row["n"] == 1 for row in usage),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.fakes.server import RedisProcess

    from opshub.config import Settings
    from opshub.db.embedded import stop_embedded_postgres
    from opshub.db.engine import resolve_database_urls
    from opshub.db.migrate import migrate

    urls = resolve_database_urls(Settings(data_dir=WORK))  # the embedded PostgreSQL in WORK
    owner = urls.owner.replace("+asyncpg", "")
    await migrate(urls)
    conn = await asyncpg.connect(owner)
    await conn.execute("TRUNCATE task_events, tasks, outbox, usage_records CASCADE")
    await conn.close()
    keys = await seed_tenants(owner, args.tenants, "soak")
    redis = RedisProcess()
    redis.start()
    fake = Fake(args.fail_every)
    hub = Hub(owner, urls.app.replace("+asyncpg", ""), redis.url, fake, args.concurrency)
    pool = await asyncpg.create_pool(owner, min_size=1, max_size=3)
    samples: dict[str, list[Any]] = {"api_rss_mb": [], "workers_rss_mb": [], "db_connections": []}
    latencies: list[float] = []
    loads: list[float] = []
    try:
        hub.start_api()
        async with httpx.AsyncClient(base_url=hub.base, timeout=60) as client:
            for key in keys:
                response = await client.put(
                    "/v1/credentials/openai",
                    json={"secret": {"api_key": f"sk-soak-{uuid.uuid4().hex}"}},
                    headers=bearer(key),
                )
                if response.status_code != 200:
                    raise SystemExit(f"storing a key failed: {response.text}")
            fake.collect()  # the key checks are not the soak's calls
            fake.calls = fake.failed = 0
            first_start = await hub.started_up([hub.start_worker() for _ in range(2)])
            began = time.monotonic()
            stop = asyncio.Event()
            background = [
                asyncio.create_task(sample(hub, pool, began, stop, samples, loads)),
                asyncio.create_task(read_load(client, keys, stop, latencies)),
                asyncio.create_task(restarter(hub, args.restart_every, began, stop)),
            ]
            submitted = await submit_all(client, keys, args.tasks, args.rate)
            ids = [uuid.UUID(task_id) for _, task_id in submitted]
            left = args.max_seconds - (time.monotonic() - began)
            finished = await all_finished(pool, within=left)
            took = time.monotonic() - began
            stop.set()
            await asyncio.gather(*background)
            fake.collect()
            outcome = await verify(pool, ids)
    finally:
        hub.stop()
        fake.close()
        redis.stop()
        await pool.close()
        stop_embedded_postgres(WORK)
    return {
        "tasks": args.tasks,
        "tenants": args.tenants,
        "submit_rate_per_s": args.rate,
        "all_finished_within_max_seconds": finished,
        "seconds": round(took, 1),
        "tasks_per_s": round(args.tasks / took, 2),
        "model_calls": fake.calls,
        "model_calls_failed": fake.failed,
        "first_workers_started_in_s": first_start,
        "worker_restarts": hub.restarts,
        "outcome": outcome,
        "api_latency_under_load": percentiles(latencies),
        "load_average_1min": {
            "min": min(loads),
            "mean": round(statistics.fmean(loads), 1),
            "max": max(loads),
        },
        "slopes_per_minute": {name: slope_per_minute(points) for name, points in samples.items()},
        "samples": {
            name: [(round(t, 1), round(v, 1)) for t, v in p] for name, p in samples.items()
        },
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_fake":
        serve_fake(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--rate", type=float, default=6.0, help="tasks submitted a second")
    parser.add_argument(
        "--restart-every", type=float, default=60.0, help="seconds between restarts' starts"
    )
    parser.add_argument("--fail-every", type=int, default=100, help="N-th model call fails")
    parser.add_argument("--concurrency", type=int, default=16, help="per worker")
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="from the first submission to the check"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run(args))
    report = {
        "benchmark": "soak",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared (load average "
        f"{os.getloadavg()[0]:.1f} at the end)",
        **report,
    }
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
