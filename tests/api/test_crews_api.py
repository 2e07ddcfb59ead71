"""/v1/crews: what each crew can do, and the model each tenant picks for it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from httpx import AsyncClient

from opshub.crews.registry import CREWS
from tests.conftest import TenantHandle

CLAUDE = {"provider": "anthropic", "model": "claude-sonnet-4-5"}


async def key_with_role(client: AsyncClient, tenant: TenantHandle, role: str) -> dict[str, str]:
    made = await client.post(
        "/v1/keys", json={"name": f"{role} key", "role": role}, headers=tenant.headers
    )
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


async def test_the_list_shows_every_crew_with_its_agents_and_tools(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.get("/v1/crews", headers=tenant_a.headers)

    assert response.status_code == 200
    crews = {crew["name"]: crew for crew in response.json()}
    assert {"marketing", "analytics", "ecommerce", "operations"} <= crews.keys()
    assert crews.keys() == CREWS.keys()
    for name, info in CREWS.items():
        crew = crews[name]
        assert crew["description"] == info.description
        assert crew["model"] is None  # nothing picked yet
        assert crew["agents"] == [
            {"role": a.role, "goal": a.goal, "tools": list(a.tools)} for a in info.agents
        ]
    assert all(crews[name]["agents"] for name in ("marketing", "analytics", "ecommerce"))
    assert any(agent["tools"] for agent in crews["ecommerce"]["agents"])


async def test_an_admin_picks_the_model_of_a_crew(
    client: AsyncClient, tenant_a: TenantHandle
) -> None:
    put = await client.put("/v1/crews/marketing/settings", json=CLAUDE, headers=tenant_a.headers)
    again = await client.put(
        "/v1/crews/marketing/settings",
        json={"provider": "openai", "model": "gpt-4o"},
        headers=tenant_a.headers,
    )
    listed = (await client.get("/v1/crews", headers=tenant_a.headers)).json()

    assert put.status_code == 200
    assert put.json()["name"] == "marketing" and put.json()["model"] == CLAUDE
    models = {crew["name"]: crew["model"] for crew in listed}
    assert models["marketing"] == {"provider": "openai", "model": "gpt-4o"}
    assert again.json()["model"] == models["marketing"]
    assert models["analytics"] is None


async def test_one_tenants_pick_is_not_anothers(
    client: AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await client.put("/v1/crews/analytics/settings", json=CLAUDE, headers=tenant_a.headers)

    other = (await client.get("/v1/crews", headers=tenant_b.headers)).json()

    assert all(crew["model"] is None for crew in other)


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_only_owners_and_admins_pick_models(
    client: AsyncClient, tenant_a: TenantHandle, role: str
) -> None:
    headers = await key_with_role(client, tenant_a, role)

    listed = await client.get("/v1/crews", headers=headers)
    put = await client.put("/v1/crews/marketing/settings", json=CLAUDE, headers=headers)

    assert listed.status_code == 200
    assert put.status_code == 403
    models = {
        c["name"]: c["model"] for c in (await client.get("/v1/crews", headers=headers)).json()
    }
    assert models["marketing"] is None


async def test_an_admin_key_picks_models_too(client: AsyncClient, tenant_a: TenantHandle) -> None:
    headers = await key_with_role(client, tenant_a, "admin")
    put = await client.put("/v1/crews/operations/settings", json=CLAUDE, headers=headers)
    assert put.status_code == 200


async def test_an_unknown_crew_is_not_found(client: AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.put("/v1/crews/legal/settings", json=CLAUDE, headers=tenant_a.headers)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "saleor", "model": "x"}, "body.provider"),
        ({"provider": "openai", "model": ""}, "body.model"),
        ({"provider": "openai", "model": "m" * 201}, "body.model"),
        ({"provider": "openai"}, "body.model"),
        ({"provider": "openai", "model": "gpt-4o", "temperature": 1}, "body.temperature"),
    ],
)
async def test_a_bad_body_is_an_invalid_request(
    client: AsyncClient, tenant_a: TenantHandle, body: dict[str, object], field: str
) -> None:
    response = await client.put("/v1/crews/marketing/settings", json=body, headers=tenant_a.headers)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in {f["loc"] for f in error["details"]["fields"]}


async def test_the_list_needs_a_caller(client: AsyncClient) -> None:
    assert (await client.get("/v1/crews")).status_code == 401


def test_serving_the_crews_api_does_not_import_crewai() -> None:
    code = (
        "import sys; import opshub.app, opshub.api.routes.crews, opshub.crews.service; "
        "print('crewai' in sys.modules)"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
