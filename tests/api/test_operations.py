"""/healthz, /readyz, /metrics, /docs and the request id that ties log lines to a request."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from opshub.app import create_app
from opshub.config import RequestRate, Settings
from opshub.db.engine import DatabaseUrls, transaction
from opshub.logging import configure_logging
from opshub.tenants import service as tenants_service
from tests.conftest import REDIS_URL, TenantHandle
from tests.fakes.black_hole import BlackHole


async def test_healthz_answers_without_touching_anything(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_the_database(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "loops": "ok"}}


async def _client_for(settings: Settings, urls: DatabaseUrls) -> tuple[FastAPI, AsyncClient]:
    app = create_app(settings, urls)
    return app, AsyncClient(transport=ASGITransport(app=app), base_url="http://opshub")


async def test_readyz_checks_redis_and_vault_when_configured(
    settings: Settings, urls: DatabaseUrls
) -> None:
    configured = settings.model_copy(
        update={"redis_url": REDIS_URL, "vault_addr": "http://127.0.0.1:9"}
    )
    app, client = await _client_for(configured, urls)
    async with app.router.lifespan_context(app), client:
        response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["vault"].startswith("unavailable")


async def test_readyz_is_503_when_redis_is_unreachable(
    settings: Settings, urls: DatabaseUrls
) -> None:
    configured = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    app, client = await _client_for(configured, urls)
    async with app.router.lifespan_context(app), client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("unavailable")


async def test_a_redis_that_never_answers_costs_a_request_seconds_not_forever(
    settings: Settings, urls: DatabaseUrls, tenant_a: TenantHandle
) -> None:
    """Redis accepts the connection and never replies (a half-dead host): limits fall back to
    in-process after the read timeout, and sign-in and reads answer."""
    with BlackHole() as hole:
        configured = settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{hole.port}/0", "redis_timeout_seconds": 0.5}
        )
        app, client = await _client_for(configured, urls)
        async with app.router.lifespan_context(app), client:
            async with asyncio.timeout(20):  # without timeouts these wait for ever
                read = await client.get("/v1/data/leads", headers=tenant_a.headers)
                login = await client.post(
                    "/v1/auth/token", json={"email": tenant_a.email, "password": tenant_a.password}
                )
                ready = await client.get("/readyz")
        assert hole.accepted  # Redis was reached, and said nothing

    assert read.status_code == 200
    assert login.status_code == 200 and login.json()["access_token"]
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unavailable")


async def test_readyz_is_503_naming_a_background_loop_that_ended(
    settings: Settings, urls: DatabaseUrls
) -> None:
    configured = settings.model_copy(update={"credential_check_minutes": 60})
    app, client = await _client_for(configured, urls)
    async with app.router.lifespan_context(app), client:
        assert (await client.get("/readyz")).status_code == 200
        [monitor] = [
            t for t in app.state.opshub.loops.tasks if t.get_name() == "credentials.monitor"
        ]
        monitor.cancel()
        await asyncio.wait([monitor])

        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["loops"] == "ended: credentials.monitor"


async def test_metrics_count_requests_by_route_template(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    await client.get("/v1/data/leads", headers=tenant_a.headers)
    text = (await client.get("/metrics")).text
    assert 'opshub_http_requests_total{method="GET",route="/v1/data/leads",status="200"}' in text
    assert "opshub_http_request_duration_seconds_bucket" in text


async def test_docs_and_the_openapi_schema_describe_the_api(client: AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    listing = schema["paths"]["/v1/data/leads"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"status", "q", "cursor", "limit"}
    assert "/v1/data/leads/import" in schema["paths"]


async def test_every_log_line_of_a_request_carries_its_request_id(
    client: AsyncClient, tenant_a: TenantHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level="INFO", json=True)
    try:
        response = await client.get(
            "/v1/data/nope", headers={**tenant_a.headers, "X-Request-ID": "req-1234"}
        )
    finally:
        logging.getLogger().handlers.clear()
    assert response.headers["x-request-id"] == "req-1234"
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    access = [line for line in lines if line.get("event") == "request"]
    assert access and all(line["request_id"] == "req-1234" for line in access)
    assert access[0]["path"] == "/v1/data/nope" and access[0]["status"] == 404


async def test_a_request_without_an_id_gets_one(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert len(response.headers["x-request-id"]) == 32


@pytest.mark.parametrize("redis_url", [None, REDIS_URL], ids=["in-process", "redis"])
async def test_a_tenant_over_its_request_rate_gets_429_and_others_do_not(
    settings: Settings,
    urls: DatabaseUrls,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    redis_url: str | None,
) -> None:
    limited = settings.model_copy(
        update={"redis_url": redis_url, "tenant_requests_per_second": 1, "tenant_request_burst": 3}
    )
    app, client = await _client_for(limited, urls)
    async with app.router.lifespan_context(app), client:
        statuses = [
            (await client.get("/v1/data/leads", headers=tenant_a.headers)).status_code
            for _ in range(4)
        ]
        refused = await client.get("/v1/data/leads", headers=tenant_a.headers)
        other = await client.get("/v1/data/leads", headers=tenant_b.headers)

    assert statuses[:3] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert other.status_code == 200


@pytest.mark.parametrize("redis_url", [None, REDIS_URL], ids=["in-process", "redis"])
async def test_a_tenants_plan_sets_its_request_rate(
    settings: Settings, urls: DatabaseUrls, owner_pool: asyncpg.Pool, redis_url: str | None
) -> None:
    limited = settings.model_copy(
        update={
            "redis_url": redis_url,
            "tenant_requests_per_second": 0.1,
            "tenant_request_burst": 2,
            "tenant_request_limits_by_plan": {"enterprise": RequestRate(per_second=0.1, burst=5)},
        }
    )
    keys = {}
    async with transaction(owner_pool) as conn:
        for plan in ("standard", "enterprise"):
            _, keys[plan] = await tenants_service.create_tenant(
                conn,
                name=f"{plan} tenant",
                owner_email=f"{plan}-{uuid.uuid4().hex[:8]}@example.com",
                password="correct horse battery",
                plan=plan,
            )
    app, client = await _client_for(limited, urls)
    async with app.router.lifespan_context(app), client:
        answered = {
            plan: [
                (
                    await client.get("/v1/data/leads", headers={"Authorization": f"Bearer {key}"})
                ).status_code
                for _ in range(6)
            ]
            for plan, key in keys.items()
        }

    assert answered["standard"] == [200, 200, 429, 429, 429, 429]
    assert answered["enterprise"] == [200, 200, 200, 200, 200, 429]
