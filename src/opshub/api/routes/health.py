from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from opshub.api.deps import StateDep
from opshub.api.state import AppState
from opshub.db.engine import ping

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check_database(state: AppState) -> None:
    async with state.app_pool.acquire() as conn:
        await ping(conn)


async def _check_redis(state: AppState) -> None:
    assert state.redis is not None  # noqa: S101 - only checked when configured
    await state.redis.ping()


async def _check_vault(state: AppState) -> None:
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as client:
        response = await client.get(f"{state.settings.vault_addr}/v1/sys/health")
    # 200 active, 429 standby: both serve reads. Sealed or uninitialised is not ready.
    if response.status_code not in (200, 429):
        raise RuntimeError(f"vault answered {response.status_code}")


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    checks: dict[str, Any] = {"database": _check_database}
    if state.redis is not None:
        checks["redis"] = _check_redis
    if state.settings.vault_addr:
        checks["vault"] = _check_vault
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(state), CHECK_TIMEOUT)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"unavailable: {type(exc).__name__}"
    # A background loop only ends when stopped, or by a bug: either way its work no longer
    # happens here (tasks would queue for ever behind a dead claim loop).
    ended = state.loops.ended()
    results["loops"] = f"ended: {', '.join(ended)}" if ended else "ok"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": results},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
