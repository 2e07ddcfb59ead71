"""Model calls through opshub: the right key for each tenant, retries, usage, cost and budgets.

Real CrewAI crews, real OpenAI/Anthropic SDKs, against the wire-exact fake in tests/fakes/llm.py;
credentials stored encrypted in the real PostgreSQL and resolved as a worker would.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from opshub.config import Settings
from opshub.credentials import service as credentials_service
from opshub.credentials.envelope import MasterKeyring
from opshub.credentials.errors import CredentialInvalidError, CredentialMissingError
from opshub.credentials.models import Health, Provider, Source
from opshub.credentials.resolver import CredentialResolver
from opshub.credentials.store import DatabaseSecretStore
from opshub.db.engine import tenant_transaction
from opshub.llm import fallback, metering
from opshub.llm import usage as usage_ledger
from opshub.llm.errors import BudgetExceededError, ProviderUnavailableError
from opshub.llm.factory import LLMFactory
from opshub.llm.fallback import ModelChoice
from opshub.llm.metering import RunMeter, current_run
from opshub.llm.usage import TokenUsage
from opshub.logging import configure_logging
from tests.conftest import TenantHandle
from tests.fakes.dns import stub_dns
from tests.fakes.llm import FakeLLMServer

PLATFORM_KEY = "sk-platform-0000000000"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def model_settings(settings: Settings, fake: FakeLLMServer) -> Settings:
    fake.reset()
    return settings.model_copy(
        update={
            "openai_base_url": f"{fake.base_url}/v1",
            "anthropic_base_url": fake.base_url,
            "platform_openai_api_key": SecretStr(PLATFORM_KEY),
            "llm_max_retries": 2,
            "credential_cache_seconds": 0,
        }
    )


@pytest.fixture
async def factory(
    app_pool: asyncpg.Pool, model_settings: Settings, tmp_path: Path
) -> AsyncIterator[LLMFactory]:
    store = DatabaseSecretStore(MasterKeyring.load(env_keys=None, path=tmp_path / "master_keys"))
    resolver = CredentialResolver(pool=app_pool, store=store, settings=model_settings)
    metering.install(model_settings.data_dir)
    built = LLMFactory(pool=app_pool, resolver=resolver, settings=model_settings)
    built.store = store  # type: ignore[attr-defined]
    yield built


async def store_key(
    app_pool: asyncpg.Pool, factory: LLMFactory, tenant: TenantHandle, provider: Provider, key: str
) -> None:
    async with tenant_transaction(app_pool, tenant.id) as conn:
        await credentials_service.put_credential(
            conn,
            store=factory.store,
            tenant_id=tenant.id,
            provider=provider,  # type: ignore[attr-defined]
            secret={"api_key": key},
            label=None,
        )


class LookupInput(BaseModel):
    sku: str = Field(description="The product SKU")


def run_crew(llm: Any, *, with_tool: bool = False) -> str:
    """One agent, one task; with_tool gives the model a tool, so a run makes two calls."""
    from crewai import Agent, Crew, Task
    from crewai.tools import BaseTool

    class StockLookup(BaseTool):
        name: str = "stock_lookup"
        description: str = "How many units of a SKU are in stock"
        args_schema: type[BaseModel] = LookupInput

        def _run(self, sku: str) -> str:
            return f"{sku}: 12 units"

    agent = Agent(
        role="Merchandiser",
        goal="Answer stock questions",
        backstory="Concise.",
        llm=llm,
        tools=[StockLookup()] if with_tool else [],
        max_retry_limit=0,
    )
    task = Task(description="Stock of SKU-1?", expected_output="One sentence", agent=agent)
    return str(Crew(agents=[agent], tasks=[task]).kickoff())


async def run_metered(meter: RunMeter, llm: Any, *, with_tool: bool = False) -> str:
    token = current_run.set(meter)
    try:
        # to_thread copies this context, so the meter follows the crew into its threads.
        return await asyncio.to_thread(run_crew, llm, with_tool=with_tool)
    finally:
        current_run.reset(token)
        from crewai.events import crewai_event_bus

        crewai_event_bus.flush()


async def write_ledger(conn: asyncpg.Connection, meter: RunMeter) -> None:
    """The meter's rows (``RunMeter.ledger``) as a run's ending writes them."""
    await conn.execute(
        "INSERT INTO usage_records (tenant_id, task_id, provider, model, input_tokens,"
        " output_tokens, cached_tokens, cost_usd, billed_to, kind) SELECT $1, $2, u.* FROM"
        " unnest($3::text[], $4::text[], $5::integer[], $6::integer[], $7::integer[],"
        " $8::numeric[], $9::text[], $10::text[]) u",
        meter.tenant_id,
        meter.task_id,
        *meter.ledger().values(),
    )


def meter_for(tenant: TenantHandle, billed_to: Source, **kwargs: Any) -> RunMeter:
    return RunMeter(
        tenant_id=tenant.id,
        task_id=None,
        provider="openai",
        billed_to=billed_to,
        prices={},
        **kwargs,
    )


async def test_two_tenants_running_at_once_each_pay_with_their_own_key(
    app_pool: asyncpg.Pool,
    factory: LLMFactory,
    fake: FakeLLMServer,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-tenant-a-111111")
    await store_key(app_pool, factory, tenant_b, Provider.anthropic, "sk-tenant-b-222222")
    llm_a = await factory.for_tenant(
        tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o"
    )
    llm_b = await factory.for_tenant(
        tenant_id=tenant_b.id, provider=Provider.anthropic, model="claude-haiku-4-5"
    )

    await asyncio.gather(
        run_metered(meter_for(tenant_a, Source.byok), llm_a.llm),
        run_metered(meter_for(tenant_b, Source.byok), llm_b.llm),
    )

    keys_by_path = {(r.path, r.api_key) for r in fake.requests}
    assert ("/v1/chat/completions", "sk-tenant-a-111111") in keys_by_path
    assert ("/v1/messages", "sk-tenant-b-222222") in keys_by_path
    assert {r.api_key for r in fake.requests_for("/v1/chat/completions")} == {"sk-tenant-a-111111"}
    assert {r.api_key for r in fake.requests_for("/v1/messages")} == {"sk-tenant-b-222222"}


async def test_the_same_tenant_and_model_reuse_one_llm_until_the_key_changes(
    app_pool: asyncpg.Pool, factory: LLMFactory, tenant_a: TenantHandle
) -> None:
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-first-key-11111")
    first = await factory.for_tenant(
        tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o"
    )
    again = await factory.for_tenant(
        tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o"
    )
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-second-key-2222")
    rotated = await factory.for_tenant(
        tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o"
    )
    assert again.llm is first.llm
    assert rotated.llm is not first.llm and rotated.fingerprint != first.fingerprint


async def test_a_tenant_without_a_key_gets_the_platform_key_only_when_its_plan_allows(
    app_pool: asyncpg.Pool,
    factory: LLMFactory,
    fake: FakeLLMServer,
    owner_engine: AsyncEngine,
    tenant_a: TenantHandle,
) -> None:
    with pytest.raises(CredentialMissingError, match="PUT /v1/credentials/openai"):
        await factory.for_tenant(tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o")

    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET plan = 'pro' WHERE id = :id"), {"id": tenant_a.id}
        )
    llm = await factory.for_tenant(tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o")
    await run_metered(meter_for(tenant_a, llm.billed_to), llm.llm)

    assert llm.billed_to is Source.platform
    assert {r.api_key for r in fake.requests} == {PLATFORM_KEY}


async def test_a_refused_key_fails_at_once_without_retry_and_is_marked_invalid(
    app_pool: asyncpg.Pool, factory: LLMFactory, fake: FakeLLMServer, tenant_a: TenantHandle
) -> None:
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-revoked-key-3333")
    llm = await factory.for_tenant(tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o")
    fake.script_error("openai", 401)

    with pytest.raises(Exception) as failure:  # CrewAI wraps the SDK error differently by path
        await run_metered(meter_for(tenant_a, Source.byok), llm.llm)
    classified = await factory.report_failure(
        tenant_id=tenant_a.id, provider=Provider.openai, error=failure.value
    )

    assert isinstance(classified, CredentialInvalidError)
    assert len(fake.requests_for("/v1/chat/completions")) == 1
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        stored = await credentials_service.get_credential(
            conn, tenant_id=tenant_a.id, provider=Provider.openai
        )
    assert stored.status is Health.invalid


async def test_a_rate_limit_with_retry_after_is_waited_out_and_the_run_succeeds(
    app_pool: asyncpg.Pool, factory: LLMFactory, fake: FakeLLMServer, tenant_a: TenantHandle
) -> None:
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-busy-key-4444444")
    llm = await factory.for_tenant(tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o")
    fake.script_error("openai", 429, retry_after=1)
    fake.script_openai(text="SKU-1 has 12 units in stock.")

    result = await run_metered(meter_for(tenant_a, Source.byok), llm.llm)

    calls = fake.requests_for("/v1/chat/completions")
    assert "12 units" in result
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 0.9


async def test_usage_is_captured_per_call_and_priced_from_the_table(
    app_pool: asyncpg.Pool, factory: LLMFactory, fake: FakeLLMServer, tenant_a: TenantHandle
) -> None:
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-usage-key-555555")
    llm = await factory.for_tenant(tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o")
    fake.script_openai(text="Done.", usage=(1200, 300, 200))
    meter = meter_for(tenant_a, Source.byok)

    await run_metered(meter, llm.llm)
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        await write_ledger(conn, meter)
        rows = await conn.fetch("SELECT * FROM usage_records WHERE tenant_id = $1", tenant_a.id)

    # gpt-4o: 2.50 in, 1.25 cached in, 10.00 out, per million tokens
    expected = (Decimal(1000) * Decimal("2.50") + 200 * Decimal("1.25") + 300 * 10) / 1_000_000
    assert meter.usage == TokenUsage(input_tokens=1200, output_tokens=300, cached_tokens=200)
    assert meter.cost_usd == expected
    assert [(r["input_tokens"], r["output_tokens"], r["billed_to"]) for r in rows] == [
        (1200, 300, "byok")
    ]


async def test_a_run_that_crosses_the_budget_stops_at_its_next_model_call(
    factory: LLMFactory, fake: FakeLLMServer, owner_engine: AsyncEngine, tenant_a: TenantHandle
) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET plan = 'pro' WHERE id = :id"), {"id": tenant_a.id}
        )
    llm = await factory.for_tenant(tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o")
    fake.script_openai(tool_calls=[("stock_lookup", {"sku": "SKU-1"})], usage=(10_000, 500))
    fake.script_openai(text="SKU-1 has 12 units.")
    meter = meter_for(tenant_a, Source.platform, budget_left_usd=Decimal("0.01"))

    with pytest.raises(Exception, match="budget"):
        await run_metered(meter, llm.llm, with_tool=True)

    assert isinstance(meter.stopped_by, BudgetExceededError)
    assert len(fake.requests_for("/v1/chat/completions")) == 1
    assert fake.pending("openai") == 1


async def test_no_platform_paid_run_starts_once_the_month_reached_the_budget(
    app_pool: asyncpg.Pool, tenant_a: TenantHandle
) -> None:
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        await usage_ledger.put_budget(conn, tenant_id=tenant_a.id, monthly_usd=Decimal("5.00"))
        for billed_to in (Source.platform, Source.byok):
            await usage_ledger.record(
                conn,
                tenant_id=tenant_a.id,
                task_id=uuid.uuid4(),
                provider="openai",
                model="gpt-4o",
                usage=TokenUsage(1_000_000, 300_000),
                billed_to=billed_to,
                overrides={},
            )
        # 2.50 + 3.00 platform spend; the BYOK row is recorded but not counted
        assert await usage_ledger.platform_spend_this_month(conn, tenant_id=tenant_a.id) == Decimal(
            "5.5"
        )
        with pytest.raises(BudgetExceededError, match=r"5\.50 USD"):
            await usage_ledger.ensure_within_budget(conn, tenant_id=tenant_a.id)
        await usage_ledger.put_budget(conn, tenant_id=tenant_a.id, monthly_usd=Decimal("50"))
        await usage_ledger.ensure_within_budget(conn, tenant_id=tenant_a.id)


async def test_a_canary_key_appears_nowhere_a_run_leaves_traces(
    app_pool: asyncpg.Pool,
    factory: LLMFactory,
    fake: FakeLLMServer,
    tenant_a: TenantHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    configure_logging(level="DEBUG", json=True)
    try:
        await store_key(app_pool, factory, tenant_a, Provider.openai, canary)
        llm = await factory.for_tenant(
            tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o"
        )
        meter = meter_for(tenant_a, Source.byok)
        fake.script_openai(tool_calls=[("stock_lookup", {"sku": "SKU-1"})])
        fake.script_error("openai", 401)
        with pytest.raises(Exception) as failure:
            await run_metered(meter, llm.llm, with_tool=True)
        classified = await factory.report_failure(
            tenant_id=tenant_a.id, provider=Provider.openai, error=failure.value
        )
        result_text = str(meter.calls) + repr(meter) + repr(llm)
    finally:
        logging.getLogger().handlers.clear()
        configure_logging(level="WARNING", json=True)

    logs = capsys.readouterr()
    assert fake.requests[0].api_key == canary  # the key did reach the provider
    for trace in (
        logs.out,
        logs.err,
        str(failure.value),
        repr(failure.value),
        str(classified),
        result_text,
    ):
        assert canary not in trace


@pytest.mark.parametrize(
    ("provider", "model", "path"),
    [
        (Provider.openai, "gpt-4o-mini", "/v1/chat/completions"),
        (Provider.anthropic, "claude-haiku-4-5", "/v1/messages"),
    ],
)
async def test_the_routing_chat_model_pays_with_the_tenants_key(
    app_pool: asyncpg.Pool,
    factory: LLMFactory,
    fake: FakeLLMServer,
    tenant_a: TenantHandle,
    provider: Provider,
    model: str,
    path: str,
) -> None:
    await store_key(app_pool, factory, tenant_a, provider, f"sk-router-{provider.value}-0001")
    chat = await factory.chat_model_for(tenant_id=tenant_a.id, provider=provider, model=model)
    reply = await chat.llm.ainvoke("Which crew handles a question about ROAS?")

    assert reply.content
    assert [r.api_key for r in fake.requests_for(path)] == [f"sk-router-{provider.value}-0001"]
    assert f"sk-router-{provider.value}" not in repr(chat)


async def test_a_byok_run_is_billed_the_plans_run_fee_not_its_model_cost(
    app_pool: asyncpg.Pool, factory: LLMFactory, fake: FakeLLMServer, tenant_a: TenantHandle
) -> None:
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-fee-key-77777777")
    llm = await factory.for_tenant(tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o")
    fake.script_openai(text="Done.", usage=(100_000, 10_000))
    meter = meter_for(tenant_a, Source.byok, byok_run_fee_usd=Decimal("0.05"))

    await run_metered(meter, llm.llm)
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        await write_ledger(conn, meter)
        billable = await usage_ledger.billable_this_month(conn, tenant_id=tenant_a.id)
        spend = await usage_ledger.platform_spend_this_month(conn, tenant_id=tenant_a.id)

    # The model call (0.35 USD on the tenant's key) is recorded, the platform bills the fee.
    assert meter.cost_usd == Decimal("0.35")
    assert (billable, spend) == (Decimal("0.05"), Decimal(0))


async def test_usage_of_a_streamed_run_is_captured(
    app_pool: asyncpg.Pool, factory: LLMFactory, fake: FakeLLMServer, tenant_a: TenantHandle
) -> None:
    from crewai import LLM

    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-stream-key-888888")
    built = await factory.for_tenant(
        tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o-mini"
    )
    streaming = LLM(
        model="openai/gpt-4o-mini",
        api_key=built.llm.api_key,
        base_url=built.llm.base_url,
        stream=True,
    )
    fake.script_openai(text="Streamed, token by token.", usage=(640, 48))
    meter = meter_for(tenant_a, Source.byok)

    await run_metered(meter, streaming)

    request = fake.requests_for("/v1/chat/completions")[0]
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert meter.usage == TokenUsage(input_tokens=640, output_tokens=48)


async def test_a_provider_that_stays_down_hands_the_run_to_the_tenants_fallback(
    app_pool: asyncpg.Pool, factory: LLMFactory, fake: FakeLLMServer, tenant_a: TenantHandle
) -> None:
    await store_key(app_pool, factory, tenant_a, Provider.openai, "sk-primary-key-999999")
    await store_key(app_pool, factory, tenant_a, Provider.anthropic, "sk-fallback-key-99999")
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        await fallback.put(
            conn,
            tenant_id=tenant_a.id,
            choice=ModelChoice(provider=Provider.anthropic, model="claude-haiku-4-5"),
        )
    primary = await factory.for_tenant(
        tenant_id=tenant_a.id, provider=Provider.openai, model="gpt-4o"
    )
    fake.script_error("openai", 500, times=3)  # the first try and both retries
    fake.script_anthropic(text="Answered by the fallback.")

    with pytest.raises(Exception) as failure:
        await run_metered(meter_for(tenant_a, Source.byok), primary.llm)
    down = await factory.report_failure(
        tenant_id=tenant_a.id, provider=Provider.openai, error=failure.value
    )
    backup = await factory.fallback_for(tenant_id=tenant_a.id, failed=Provider.openai)
    assert backup is not None
    result = await run_metered(meter_for(tenant_a, Source.byok), backup.llm)

    assert isinstance(down, ProviderUnavailableError)
    assert "Answered by the fallback." in result
    assert len(fake.requests_for("/v1/chat/completions")) == 3
    assert {r.api_key for r in fake.requests_for("/v1/messages")} == {"sk-fallback-key-99999"}


async def test_without_a_fallback_there_is_nothing_to_hand_over(
    factory: LLMFactory, tenant_a: TenantHandle
) -> None:
    assert await factory.fallback_for(tenant_id=tenant_a.id, failed=Provider.openai) is None


async def test_a_self_hosted_model_whose_name_resolves_to_a_private_address_is_never_called(
    app_pool: asyncpg.Pool,
    model_settings: Settings,
    fake: FakeLLMServer,
    tenant_a: TenantHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The shared settings let tenants' URLs name loopback (the fakes live there); a hub's don't.
    guarded = model_settings.model_copy(update={"allow_internal_urls": False})
    stub_dns(monkeypatch)["models.tenant.example"] = ["127.0.0.1"]
    store = DatabaseSecretStore(MasterKeyring.load(env_keys=None, path=tmp_path / "master_keys"))
    resolver = CredentialResolver(pool=app_pool, store=store, settings=guarded)
    factory = LLMFactory(pool=app_pool, resolver=resolver, settings=guarded)
    async with tenant_transaction(app_pool, tenant_a.id) as conn:
        # A public-looking name passes the check at save time.
        await credentials_service.put_credential(
            conn,
            store=store,
            tenant_id=tenant_a.id,
            provider=Provider.openai_compatible,
            secret={"base_url": f"http://models.tenant.example:{fake.port}/v1"},
            label=None,
        )
    llm = await factory.for_tenant(
        tenant_id=tenant_a.id, provider=Provider.openai_compatible, model="default"
    )

    with pytest.raises(Exception, match="Connection error"):  # the SDK's words for it
        await run_metered(meter_for(tenant_a, Source.byok), llm.llm)
    assert fake.requests == []
