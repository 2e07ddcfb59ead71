"""Schemathesis over the whole OpenAPI document of the in-process app, as two tenants.

Requests that fit the document (and, as many again, requests that don't) go to every operation
with one or the other tenant's API key. Every answer must be no server error, a status the
document lists for the operation, of the content type it names, in the schema it gives.

The requests are generated in a worker thread (Hypothesis is synchronous) and sent through the
test's own event loop, where the app's database pools live. Examples are bounded and derandomized
so a run takes the same requests and about a minute; ``OPSHUB_SCHEMATHESIS_EXAMPLES`` raises the
count for a deeper look by hand.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import TenantHandle

EXAMPLES = int(os.environ.get("OPSHUB_SCHEMATHESIS_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BASE_URL = "http://opshub"
# An endless stream: it answers once a client leaves (its own tests read it).
ENDLESS = ["tenant_events"]

Send = Callable[[dict[str, Any]], httpx.Response]


def httpx_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis serializes a case for ``requests``; the same request for httpx."""
    request = {key: kwargs[key] for key in ("method", "url", "headers", "params") if key in kwargs}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    if kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data.encode() if isinstance(data, str) else data
    if kwargs.get("cookies"):
        request["cookies"] = kwargs["cookies"]
    return request


def explore(
    operation: APIOperation, mode: GenerationMode, keys: list[str], send: Send
) -> list[str]:
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), key=st.sampled_from(keys))
    def check(case: Any, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        response = send(httpx_request(case.as_transport_kwargs(BASE_URL, headers)))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as exc:
            failures.append(f"{operation.label} ({mode.value}): {exc}")

    try:
        check()
    except Unsatisfiable:
        # An operation that takes nothing (GET /healthz) has no invalid request to make.
        if mode is GenerationMode.POSITIVE:
            raise
    return failures


def explore_all(schema: BaseSchema, keys: list[str], send: Send) -> list[str]:
    failures: list[str] = []
    for result in schema.exclude(operation_id=ENDLESS).get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += explore(operation, mode, keys, send)
    return failures


async def test_every_answer_is_documented_and_matches_its_schema(
    app: FastAPI, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    schema = schemathesis.openapi.from_dict(app.openapi())
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=30
    ) as http:

        def send(request: dict[str, Any]) -> httpx.Response:
            return asyncio.run_coroutine_threadsafe(http.request(**request), loop).result(60)

        failures = await asyncio.to_thread(
            explore_all, schema, [tenant_a.api_key, tenant_b.api_key], send
        )

    assert failures == [], f"{len(failures)} answers break the OpenAPI document:\n" + "\n\n".join(
        dict.fromkeys(failures)
    )
