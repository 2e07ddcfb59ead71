"""The fake LLM server speaks the OpenAI and Anthropic wire formats: proven with the real SDKs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.llm import FakeLLMServer

# Before crewai is imported: otherwise it phones home and waits ~10 s at exit on a closed network.
for _name, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}.items():
    os.environ[_name] = _value

USER = [{"role": "user", "content": "What's the weather in Paris?"}]
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "input_schema": WEATHER_TOOL_OPENAI["function"]["parameters"],
}


_clients: list[openai.OpenAI | anthropic.Anthropic] = []  # closed when the test's fake stops


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server
        while _clients:
            _clients.pop().close()


def oai(fake: FakeLLMServer, key: str = "sk-test-a", **kwargs: Any) -> openai.OpenAI:
    _clients.append(openai.OpenAI(api_key=key, base_url=f"{fake.base_url}/v1", **kwargs))
    return _clients[-1]


def ant(fake: FakeLLMServer, key: str | None = "sk-ant-a", **kwargs: Any) -> anthropic.Anthropic:
    _clients.append(anthropic.Anthropic(api_key=key, base_url=fake.base_url, **kwargs))
    return _clients[-1]


# -- OpenAI ------------------------------------------------------------------------------------


def test_openai_chat_returns_scripted_text_and_usage(fake: FakeLLMServer) -> None:
    fake.script_openai(text="hello", usage=(10, 5, 4))
    reply = oai(fake).chat.completions.create(model="gpt-4o-mini", messages=USER)

    assert reply.choices[0].message.content == "hello"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (10, 5)
    assert reply.usage.total_tokens == 15
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 4
    [request] = fake.requests_for("/v1/chat/completions")
    assert request.api_key == "sk-test-a"
    assert request.headers["authorization"] == "Bearer sk-test-a"
    assert request.body["messages"] == USER


def test_openai_stream_with_usage_chunk(fake: FakeLLMServer) -> None:
    fake.script_openai(text="streamed words arrive in pieces", usage=(12, 6))
    stream = oai(fake).chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed words arrive in pieces"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 6)
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_tool_call_round_trip(fake: FakeLLMServer) -> None:
    client = oai(fake)
    fake.script_openai(tool_calls=[("get_weather", {"city": "Paris"})])
    fake.script_openai(text="It is sunny in Paris.")

    first = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        tools=[WEATHER_TOOL_OPENAI],
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages = [
        *USER,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'},
    ]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    assert second.choices[0].message.content == "It is sunny in Paris."
    sent = fake.requests_for("/v1/chat/completions")[1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id
    assert sent[2]["tool_call_id"] == call.id


def test_openai_streamed_tool_call_reassembles(fake: FakeLLMServer) -> None:
    fake.script_openai(tool_calls=[("get_weather", {"city": "Paris", "unit": "celsius"})])
    stream = oai(fake).chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        tools=[WEATHER_TOOL_OPENAI],
        stream=True,
    )
    names, arguments, finish = [], "", None
    for chunk in stream:
        for tool_call in chunk.choices[0].delta.tool_calls or []:
            names += [tool_call.function.name] if tool_call.function.name else []
            arguments += tool_call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["get_weather"]
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert finish == "tool_calls"


def test_openai_embeddings_models_and_default_reply(fake: FakeLLMServer) -> None:
    client = oai(fake)
    small = client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=384)
    many = client.embeddings.create(model="text-embedding-3-small", input=["hi", "there"])

    assert len(small.data[0].embedding) == 384
    assert [len(d.embedding) for d in many.data] == [1536, 1536]
    assert many.data[0].embedding != many.data[1].embedding
    assert many.data[0].embedding[:384] != small.data[0].embedding  # dims are a new vector
    again = client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=384)
    assert again.data[0].embedding == small.data[0].embedding
    assert small.usage.prompt_tokens > 0
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert reply.choices[0].message.content == "ok"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0


# -- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_message_and_both_auth_headers(fake: FakeLLMServer) -> None:
    fake.script_anthropic(text="bonjour", usage=(30, 3, 5, 7))
    message = ant(fake).messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=USER)

    assert message.content[0].type == "text"
    assert message.content[0].text == "bonjour"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 3)
    assert message.usage.cache_creation_input_tokens == 5
    assert message.usage.cache_read_input_tokens == 7
    bearer = ant(fake, key=None, auth_token="sk-ant-bearer")
    bearer.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=USER)
    first, second = fake.requests_for("/v1/messages")
    # anthropic >= 2.0 sends the API key as a bearer token, with API version 2026-10-21.
    assert (first.api_key, first.headers["authorization"]) == ("sk-ant-a", "Bearer sk-ant-a")
    assert first.headers["anthropic-version"] == "2026-10-21"
    assert (second.api_key, second.headers["authorization"]) == (
        "sk-ant-bearer",
        "Bearer sk-ant-bearer",
    )


def test_anthropic_stream_final_message_usage(fake: FakeLLMServer) -> None:
    fake.script_anthropic(text="a streamed answer in parts", usage=(40, 9))
    with ant(fake).messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=USER,
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == "a streamed answer in parts"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (40, 9)
    assert final.stop_reason == "end_turn"


def test_anthropic_tool_use_round_trip_streamed_and_not(fake: FakeLLMServer) -> None:
    client = ant(fake)
    fake.script_anthropic(text="Checking.", tool_uses=[("get_weather", {"city": "Paris"})])
    fake.script_anthropic(tool_uses=[("get_weather", {"city": "Lyon"})])
    fake.script_anthropic(text="Sunny in both.")
    kwargs = {"model": "claude-sonnet-4-5", "max_tokens": 64, "tools": [WEATHER_TOOL_ANTHROPIC]}

    first = client.messages.create(messages=USER, **kwargs)
    assert first.stop_reason == "tool_use"
    [text, tool_use] = first.content
    assert text.type == "text"
    assert tool_use.type == "tool_use"
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris"})
    with client.messages.stream(messages=USER, **kwargs) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].type == "tool_use"
    assert streamed.content[0].input == {"city": "Lyon"}
    result = {"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}
    messages = [
        *USER,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [result]},
    ]
    last = client.messages.create(messages=messages, **kwargs)
    assert last.content[0].text == "Sunny in both."
    assert fake.requests_for("/v1/messages")[2].body["messages"][2]["content"][0] == result


def test_anthropic_count_tokens_and_models(fake: FakeLLMServer) -> None:
    client = ant(fake)
    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=USER)
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=USER)
    assert counted.input_tokens == message.usage.input_tokens > 0

    page = client.models.list()
    assert [m.id for m in page.data] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    assert page.has_more is False
    assert page.first_id == "claude-sonnet-4-5"


# -- errors, retries, access -------------------------------------------------------------------


def test_invalid_keys_get_each_providers_401(fake: FakeLLMServer) -> None:
    fake.valid_keys = {"sk-good"}
    with pytest.raises(openai.AuthenticationError) as oai_err:
        oai(fake, key="sk-bad-key-123").models.list()
    with pytest.raises(anthropic.AuthenticationError) as ant_err:
        ant(fake, key="sk-bad-key-123").messages.create(
            model="claude-sonnet-4-5",
            max_tokens=8,
            messages=USER,
        )

    assert oai_err.value.code == "invalid_api_key"
    assert oai_err.value.body["type"] == "invalid_request_error"
    assert ant_err.value.body["type"] == "error"
    assert ant_err.value.body["error"]["type"] == "authentication_error"
    assert ant_err.value.request_id and ant_err.value.request_id.startswith("req_")
    assert [r.api_key for r in fake.requests] == ["sk-bad-key-123", "sk-bad-key-123"]
    assert oai(fake, key="sk-good").models.list().data


def test_openai_429_retry_after_is_honoured(fake: FakeLLMServer) -> None:
    fake.script_error("openai", 429, retry_after=1)
    fake.script_openai(text="after the wait")
    reply = oai(fake, max_retries=2).chat.completions.create(model="gpt-4o-mini", messages=USER)

    assert reply.choices[0].message.content == "after the wait"
    first, second = fake.requests_for("/v1/chat/completions")
    assert second.at - first.at >= 0.95
    assert [
        first.headers["x-stainless-retry-count"],
        second.headers["x-stainless-retry-count"],
    ] == [
        "0",
        "1",
    ]
    assert first.api_key == second.api_key == "sk-test-a"


def test_openai_error_shapes_without_retries(fake: FakeLLMServer) -> None:
    client = oai(fake, max_retries=0)
    fake.script_error("openai", 429, code="insufficient_quota", error_type="insufficient_quota")
    fake.script_error("openai", 500)
    with pytest.raises(openai.RateLimitError) as quota:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert quota.value.code == "insufficient_quota"
    assert set(quota.value.body) == {"message", "type", "param", "code"}


def test_anthropic_529_is_retried(fake: FakeLLMServer) -> None:
    fake.script_error("anthropic", 529)
    fake.script_anthropic(text="back")
    message = ant(fake, max_retries=2).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=8,
        messages=USER,
    )
    assert message.content[0].text == "back"
    retries = [r.headers["x-stainless-retry-count"] for r in fake.requests_for("/v1/messages")]
    assert retries == ["0", "1"]
    fake.script_error("anthropic", 529)
    with pytest.raises(anthropic.APIStatusError) as err:
        ant(fake, max_retries=0).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=8,
            messages=USER,
        )
    assert err.value.status_code == 529
    assert type(err.value).__name__ == "OverloadedError"
    assert err.value.body["error"]["type"] == "overloaded_error"


def test_latency_model_access_and_version_rules(fake: FakeLLMServer) -> None:
    fake.script_openai(text="slow", latency=0.5)
    started = time.monotonic()
    oai(fake).chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert time.monotonic() - started >= 0.5

    fake.model_access = {"sk-small": {"gpt-4o-mini"}}
    small = oai(fake, key="sk-small", max_retries=0)
    assert [m.id for m in small.models.list()] == ["gpt-4o-mini"]
    with pytest.raises(openai.NotFoundError) as missing:
        small.chat.completions.create(model="gpt-4o", messages=USER)
    assert missing.value.code == "model_not_found"

    # anthropic 2.x dropped the sampling parameters from its signature; raw JSON still reaches
    # the API, which refuses them under 2026-10-21.
    new_api = ant(fake, default_headers={"anthropic-version": "2026-10-21"}, max_retries=0)
    with pytest.raises(anthropic.BadRequestError):
        new_api.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=8,
            messages=USER,
            extra_body={"temperature": 0.2},
        )
    assert fake.pending("openai") == 0


# -- CrewAI ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "suffix", "family"),
    [("openai/gpt-4o-mini", "/v1", "openai"), ("anthropic/claude-sonnet-4-5", "", "anthropic")],
)
def test_crewai_crew_runs_against_the_fake_with_the_tenant_key(
    fake: FakeLLMServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    suffix: str,
    family: str,
) -> None:
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path))  # absolute: appdirs uses it as-is
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    from crewai import LLM, Agent, Crew, Task

    getattr(fake, f"script_{family}")(text="Paris is sunny today.", usage=(50, 8))
    llm = LLM(model=model, api_key="sk-tenant-a", base_url=f"{fake.base_url}{suffix}")
    agent = Agent(role="Forecaster", goal="Report the weather", backstory="Concise.", llm=llm)
    task = Task(description="Weather in Paris?", expected_output="One sentence", agent=agent)
    result = Crew(agents=[agent], tasks=[task]).kickoff()

    assert "Paris is sunny today." in str(result)
    assert fake.pending(family) == 0
    assert {r.api_key for r in fake.requests} == {"sk-tenant-a"}
    if family == "openai":
        assert {r.path for r in fake.requests} == {"/v1/chat/completions"}
    else:  # crewai counts tokens before each Anthropic call (respect_context_window)
        paths = [r.path for r in fake.requests]
        assert paths == ["/v1/messages/count_tokens", "/v1/messages"]
