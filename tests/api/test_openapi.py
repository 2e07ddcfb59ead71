"""/openapi.json tells the truth: explicit operation ids and tags, the bearer scheme on every
operation that needs it (and those answer 401 without it), error statuses with the real
envelope, a valid example on every JSON request body, and the task event types listed."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jsonschema
import pytest
from httpx import AsyncClient

from opshub.tasks.models import EventType
from tests.conftest import TenantHandle

Operations = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture
async def document(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def operations(document: dict[str, Any]) -> Operations:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_operation_ids_are_the_route_names_and_every_operation_has_a_tag(
    document: dict[str, Any],
) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", i) for i in ids), ids
    assert {"submit_task", "get_task", "create_lead", "import_reports", "approve_action"} <= set(
        ids
    )
    assert all(operation.get("tags") for _, _, operation in operations(document))


async def test_secured_operations_declare_bearer_and_refuse_without_it(
    document: dict[str, Any], client: AsyncClient
) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = [(p, m, o) for p, m, o in operations(document) if o.get("security")]
    assert len(secured) > 50
    public = {o["operationId"] for _, _, o in operations(document) if not o.get("security")}
    assert {"create_token", "healthz", "readyz"} <= public
    assert "submit_task" not in public
    for path, method, operation in secured:
        assert operation["security"] == [{"bearer": []}]
        names = {p["name"].lower() for p in operation.get("parameters", [])}
        assert "authorization" not in names
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await client.request(method, url)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "missing_credentials"
        assert "401" in operation["responses"]


async def test_error_statuses_are_documented_with_the_envelope(
    document: dict[str, Any], client: AsyncClient, tenant_a: TenantHandle
) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for _, _, operation in operations(document):
        if operation["operationId"] == "readyz":
            continue  # its 503 is the readiness report itself, which names what is down
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and "application/json" in response.get("content", {}):
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }
    get_task = document["paths"]["/v1/tasks/{task_id}"]["get"]
    assert {"401", "403", "404", "422"} <= set(get_task["responses"])
    missing = await client.get(f"/v1/tasks/{uuid.uuid4()}", headers=tenant_a.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    invalid = await client.get("/v1/tasks/not-a-uuid", headers=tenant_a.headers)
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid_request"
    assert {"409", "422"} <= set(document["paths"]["/v1/tasks"]["post"]["responses"])


def test_every_json_request_body_has_a_valid_example(document: dict[str, Any]) -> None:
    bodies = [
        (operation["operationId"], operation["requestBody"]["content"]["application/json"])
        for _, _, operation in operations(document)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(bodies) >= 30
    for operation_id, body in bodies:
        assert "example" in body, operation_id
        # The schema's refs resolve against the document, as a client generator resolves them.
        schema = {**body["schema"], "components": document["components"]}
        jsonschema.validate(body["example"], schema)


def test_the_task_event_stream_lists_its_event_types(document: dict[str, Any]) -> None:
    stream = document["paths"]["/v1/tasks/{task_id}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in stream["content"]
    for event_type in EventType:
        assert f"`{event_type.value}`" in stream["description"]
    assert "TaskEvent" in document["components"]["schemas"]
