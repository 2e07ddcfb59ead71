"""The OpenAPI document told truthfully, in one place so route modules stay as they are.

FastAPI's document is post-processed: operation ids become the route functions' names (FastAPI
appends the path and method), the ``Authorization`` header parameter becomes the bearer security
scheme (so Swagger's Authorize button works), every operation lists the error statuses it can
answer with the API's error envelope (and a second success status where there is one), request
bodies get an example, /readyz and /metrics their real answers, and the task event stream lists
its event types. tests/api/test_schemathesis.py holds the app to this document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from opshub.api.openapi_examples import EXAMPLES
from opshub.tasks.models import EventType
from opshub.tasks.schemas import TaskEvent

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable, e.g. not_found."},
                "message": {"type": "string", "description": "For people."},
                "details": {"type": "object", "description": "Which fields, which limits."},
            },
        }
    },
}
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "A user's JWT (POST /v1/auth/token), a tenant API key (ohk_…), or on "
    "/v1/admin/* the platform admin token.",
}
ERRORS = {
    400: "The body can't be parsed (invalid_request); new work past this month's platform "
    "budget is budget_exceeded.",
    401: "No valid credentials (missing_credentials, invalid_token, token_expired, …).",
    403: "The caller's role is too low (forbidden).",
    404: "No such object in the caller's tenant (not_found).",
    409: "The object's state does not allow it (e.g. task_finished, action_not_pending).",
    413: "The body is larger than the hub accepts (payload_too_large).",
    422: "The request is not valid (invalid_request, with the fields in details).",
    429: "Too many requests or attempts (rate_limited, with Retry-After).",
    503: "The database is unavailable (database_unavailable, with Retry-After): send it again "
    "shortly.",
}
READINESS: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "checks": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Per dependency: ok, or unavailable: <why>.",
        },
    },
}
# Operations that answer a second success status besides their usual one: (usual, other, when).
OTHER_SUCCESS = {
    "submit_task": ("202", "200", "The same Idempotency-Key within 24 hours: the task it made."),
    "add_memory": ("201", "200", "A duplicate, or it refreshed an existing memory."),
    "put_mcp_server": ("200", "201", "A server of that name is registered anew."),
}
# Operations whose body names another object of the tenant (a thread to continue).
REFERS_IN_BODY = {"submit_task"}
EVENT_STREAM = "/v1/tasks/{task_id}/events"
MUTATING = {"post", "put", "patch", "delete"}
DATA_RESOURCE = re.compile(r"^/v1/data/(\w+)")


def _error(status: int) -> dict[str, Any]:
    return {"description": ERRORS[status], "content": {"application/json": {"schema": ERROR_REF}}}


def _statuses(path: str, method: str, operation: dict[str, Any], authed: bool) -> set[int]:
    # FastAPI documents 422 (as its own shape) on any operation with parameters; ours sends it.
    statuses = {422} if "422" in operation.get("responses", {}) else set()
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    if operation.get("requestBody"):
        statuses |= {400, 413}
    if authed:
        statuses |= {401, 403}
    if authed and not path.startswith("/v1/admin/"):
        # Every tenant request counts against the tenant's requests a second.
        statuses.add(429)
    if authed or path == "/v1/auth/token":
        statuses.add(503)
    if "{" in path or operation["operationId"] in REFERS_IN_BODY:
        statuses.add(404)
    if authed and method in MUTATING:
        statuses.add(409)
    if path == "/v1/auth/token":
        statuses |= {401, 429}
    return statuses


def _operation_id(generated: str, path: str, method: str) -> str:
    """The route function's name (FastAPI's id is the name, the path and the method); the
    data resources share their functions, so theirs name the resource: ``create_lead``."""
    name = generated.removesuffix(re.sub(r"\W", "_", path) + "_" + method)
    if data := DATA_RESOURCE.match(path):
        resource = data.group(1)
        name = name.replace("items", resource).replace("item", resource.removesuffix("s"))
    return name


def _refine(path: str, method: str, operation: dict[str, Any]) -> None:
    operation["operationId"] = _operation_id(operation["operationId"], path, method)
    parameters = operation.get("parameters", [])
    authed = any(p["in"] == "header" and p["name"].lower() == "authorization" for p in parameters)
    if authed:
        operation["parameters"] = [p for p in parameters if p["name"].lower() != "authorization"]
        if not operation["parameters"]:
            del operation["parameters"]
        operation["security"] = [{"bearer": []}]
    responses = operation.setdefault("responses", {})
    for status in sorted(_statuses(path, method, operation, authed)):
        responses[str(status)] = _error(status)
    if other := OTHER_SUCCESS.get(operation["operationId"]):
        usual, also, when = other
        responses[also] = {**responses[usual], "description": when}
    example = EXAMPLES.get(operation["operationId"])
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and example is not None:
        body["example"] = example


def _event_stream(operation: dict[str, Any]) -> None:
    types = ", ".join(f"`{t.value}`" for t in EventType)
    operation["responses"]["200"] = {
        "description": "Server-Sent Events, one per step: `id:` the event's seq, `event:` its "
        f"type, `data:` the event as JSON. Types: {types}. The stream ends after the task's "
        "final event; `Last-Event-ID` resumes after an event.",
        "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/TaskEvent"}}},
    }


def _health_endpoints(paths: dict[str, Any]) -> None:
    """The answers of /readyz and /metrics, which FastAPI can't see in their routes."""
    readyz = paths.get("/readyz", {}).get("get")
    if readyz is not None:
        ready = {"content": {"application/json": {"schema": READINESS}}}
        readyz["responses"]["200"] = {"description": "Every dependency answers.", **ready}
        readyz["responses"]["503"] = {"description": "A dependency does not answer.", **ready}
    metrics = paths.get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {
            "description": "Prometheus text exposition.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            schemas["Error"] = ERROR_SCHEMA
            schemas["TaskEvent"] = TaskEvent.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components["securitySchemes"] = {"bearer": BEARER}
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    _refine(path, method, operation)
            _health_endpoints(schema["paths"])
            stream = schema["paths"].get(EVENT_STREAM, {}).get("get")
            if stream is not None:
                _event_stream(stream)
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    replace: Callable[[], dict[str, Any]] = openapi
    app.openapi = replace  # type: ignore[method-assign]
