"""Authenticated `GET /v1/data/leads?limit=50`: RLS role against the same query as a BYPASSRLS role.

100k leads across 20 tenants in the embedded PostgreSQL; one uvicorn worker (`opshub api`);
`wrk` with 50 connections rotating over the 20 tenants' API keys. The two configurations run in
alternating rounds so drift on the shared machine hits both alike; medians are reported.

    .venv/bin/python bench/api_read.py [--rounds 3] [--seconds 15]

Needs `wrk` (Debian package). Results go to bench/results/api_read.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from opshub.auth.models import Role
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls, create_pool, resolve_database_urls, transaction
from opshub.db.migrate import migrate
from opshub.tenants import service as tenants_service

HERE = Path(__file__).parent
WORK = HERE / ".work" / "api_read"
RESULTS = HERE / "results" / "api_read.json"
TENANTS, LEADS_PER_TENANT = 20, 5_000
BYPASS_ROLE = "opshub_bench_bypass"


async def seed(urls: DatabaseUrls) -> list[str]:
    """Create the tenants and leads once; return one API key per tenant (new keys each run)."""
    await migrate(urls)
    pool = await create_pool(urls.owner, size=1)
    keys: list[str] = []
    async with transaction(pool) as conn:
        tenants = await tenants_service.list_tenants(conn)
        for n in range(len(tenants), TENANTS):
            tenant, _ = await tenants_service.create_tenant(
                conn,
                name=f"bench-{n}",
                owner_email=f"bench{n}@example.com",
                password="bench-password",  # noqa: S106 - a throw-away benchmark tenant
            )
            tenants.append(tenant)
        start = datetime.now(UTC) - timedelta(days=365)
        for tenant in tenants:
            have = await conn.fetchval("SELECT count(*) FROM leads WHERE tenant_id = $1", tenant.id)
            records = [
                (
                    tenant.id,
                    f"Lead {i}",
                    f"lead{i}@example.com",
                    f"Company {i % 300}",
                    ("ads", "web", "referral")[i % 3],
                    ("new", "contacted", "qualified", "won", "lost")[i % 5],
                    i % 100,
                    start + timedelta(minutes=i),
                )
                for i in range(have, LEADS_PER_TENANT)
            ]
            columns = ["tenant_id", "name", "email", "company", "source", "status", "score"]
            await conn.copy_records_to_table(
                "leads", records=records, columns=[*columns, "created_at"]
            )
            _, key = await tenants_service.create_api_key(
                conn, tenant_id=tenant.id, name="bench", role=Role.viewer
            )
            keys.append(key)
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", BYPASS_ROLE)
        if not exists:
            await conn.execute(f"CREATE ROLE {BYPASS_ROLE} LOGIN BYPASSRLS")
        await conn.execute(f"GRANT opshub_tenant TO {BYPASS_ROLE}")
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE")
    await pool.close()
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_wrk_script(keys: list[str]) -> Path:
    script = WORK / "rotate_keys.lua"
    script.write_text(
        "keys = {" + ",".join(f'"{k}"' for k in keys) + "}\n"
        "counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        "  local key = keys[(counter % #keys) + 1]\n"
        '  local headers = {["Authorization"] = "Bearer " .. key}\n'
        '  return wrk.format("GET", "/v1/data/leads?limit=50", headers)\n'
        "end\n"
    )
    return script


def parse_wrk(output: str) -> dict[str, float]:
    def latency_ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if match is None:
            raise SystemExit(f"no {label}th percentile in wrk's output:\n{output}")
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if rps is None:
        raise SystemExit(f"no throughput in wrk's output:\n{output}")
    if errors or socket_errors:
        raise SystemExit(f"the run had failed requests:\n{output}")
    return {"rps": float(rps[1]), "p50_ms": latency_ms("50"), "p99_ms": latency_ms("99")}


def run_round(app_url: str, owner_url: str, script: Path, seconds: int) -> dict[str, float]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPSHUB_")},
        "OPSHUB_DATABASE_URL": owner_url,
        "OPSHUB_DATABASE_APP_URL": app_url,
        "OPSHUB_DATA_DIR": str(WORK),
        "OPSHUB_PORT": str(port),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "opshub", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        wrk = ["wrk", "-t1", "-c50", "--latency", "-s", str(script), f"{base}/v1/data/leads"]
        subprocess.run([*wrk[:3], "-d3s", *wrk[3:]], capture_output=True, check=True)  # warm-up
        done = subprocess.run(
            [*wrk[:3], f"-d{seconds}s", *wrk[3:]], capture_output=True, text=True, check=True
        )
        return parse_wrk(done.stdout)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=WORK)
    urls = resolve_database_urls(settings)
    keys = asyncio.run(seed(urls))
    script = write_wrk_script(keys)
    plain_owner = urls.owner.replace("+asyncpg", "")
    configs = {
        "rls": urls.app.replace("+asyncpg", ""),
        "bypassrls": urls.app.replace("+asyncpg", "").replace("opshub_app@", f"{BYPASS_ROLE}@"),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    for round_no in range(args.rounds):
        for name, app_url in configs.items():
            result = run_round(app_url, plain_owner, script, args.seconds)
            runs[name].append(result)
            print(
                f"round {round_no + 1} {name:>9}: {result['rps']:8.1f} req/s  "
                f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms",
                flush=True,
            )

    summary = {
        name: {
            key: statistics.median(r[key] for r in results) for key in ("rps", "p50_ms", "p99_ms")
        }
        for name, results in runs.items()
    }
    rls_cost = 1 - summary["rls"]["rps"] / summary["bypassrls"]["rps"]
    report = {
        "benchmark": "api_read",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "setup": f"{TENANTS} tenants x {LEADS_PER_TENANT} leads, GET /v1/data/leads?limit=50, "
        f"API-key auth, 50 connections (wrk -t1), 1 uvicorn worker, "
        f"{args.rounds} alternating rounds of {args.seconds}s",
        "median": summary,
        "rls_throughput_cost": round(rls_cost, 4),
        "rounds": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps(
            {"median": summary, "rls_throughput_cost": report["rls_throughput_cost"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
