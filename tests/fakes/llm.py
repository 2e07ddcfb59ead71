"""A local fake of the OpenAI and Anthropic HTTP APIs, wire-exact enough for the real SDKs.

Run it around a test and point the real clients at it::

    with FakeLLMServer() as fake:
        fake.script_openai(text="hello", usage=(10, 5))
        client = openai.OpenAI(api_key="sk-a", base_url=f"{fake.base_url}/v1")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert fake.requests_for("/v1/chat/completions")[0].api_key == "sk-a"

Anthropic clients take ``base_url=fake.base_url`` (the SDK adds ``/v1/messages``). Scripted
replies are consumed in order per route family (see ``FAMILIES``); an empty queue answers a
default text reply, so a caller that makes extra calls never hangs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import random
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server import BackgroundServer

ROUTES = {  # (method, path) -> route family; GET /v1/models is split by `anthropic-version`
    ("POST", "/v1/chat/completions"): "openai",
    ("POST", "/v1/embeddings"): "openai_embeddings",
    ("GET", "/v1/models"): "openai_models",
    ("POST", "/v1/messages"): "anthropic",
    ("POST", "/v1/messages/count_tokens"): "anthropic_count_tokens",
}
FAMILIES = (*ROUTES.values(), "anthropic_models")

OPENAI_ERRORS = {  # status -> (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: {key}."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Not supported."),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
ANTHROPIC_ERRORS = {  # status -> (type, message)
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")  # rejected under anthropic-version 2026-10-21
OPENAI_HEADERS = {  # sent with every OpenAI success, besides x-request-id
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "2000000",
    "x-ratelimit-remaining-tokens": "1999000",
    "x-ratelimit-reset-tokens": "30ms",
}
ANTHROPIC_HEADERS = {  # sent with every Anthropic success, besides request-id
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    api_key: str | None  # from `x-api-key` or `Authorization: Bearer`
    at: float  # time.monotonic() on arrival


@dataclass
class Scripted:
    """One queued answer: a reply (status 200) or an error."""

    text: str | None = None
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: tuple[int, ...] | None = None
    model: str | None = None
    stop: str | None = None
    status: int = 200
    message: str | None = None
    code: str | None = None
    error_type: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0


@dataclass(frozen=True)
class Call:
    """What a route handler gets: the JSON body, the scripted answer and the caller's key."""

    body: dict[str, Any]
    item: Scripted
    key: str | None


class FakeLLMError(Exception):
    """Raised inside a handler to answer with the provider's error shape."""

    def __init__(
        self,
        status: int,
        item: Scripted | None = None,
        message: str | None = None,
        code: str | None = None,
        **fmt: str,
    ) -> None:
        super().__init__(status)
        self.status, self.fmt = status, fmt
        self.item = item or Scripted(status=status, message=message, code=code)


def _id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _tokens(*parts: Any) -> int:
    """Deterministic token estimate: ~4 characters of JSON per token."""
    text = "".join(p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in parts if p)
    return max(1, len(text) // 4)


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _vector(text: str, dims: int) -> list[float]:
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return [x / norm for x in vec]


def _sse(data: dict[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


def _mask(key: str | None) -> str:
    return f"{key[:3]}***{key[-4:]}" if key and len(key) > 8 else "***"


class FakeLLMServer(BackgroundServer):
    """OpenAI + Anthropic on one local port; see the module docstring."""

    def __init__(self, *, default_text: str = "ok", default_latency: float = 0.0) -> None:
        self.default_text = default_text
        self.default_latency = default_latency  # for answers nobody scripted
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests ever being answered at once
        self.valid_keys: set[str] | None = None  # None: any non-empty key is accepted
        self.model_access: dict[str, set[str]] = {}  # key -> models it may use (absent: all)
        self.openai_models = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        self.anthropic_models = ["claude-sonnet-4-5", "claude-haiku-4-5"]
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queues: dict[str, deque[Scripted]] = {f: deque() for f in FAMILIES}
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        super().__init__(Starlette(routes=[Route("/{path:path}", self._dispatch, methods=methods)]))

    def script_openai(
        self,
        text: str | None = None,
        *,
        tool_calls: Iterable[tuple[str, dict[str, Any]]] = (),
        usage: tuple[int, ...] | None = None,
        model: str | None = None,
        finish_reason: str | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue one chat completion (``times`` copies); streamed when the request asks.

        ``text`` and ``tool_calls`` (``[(name, arguments_dict)]``) may be combined; neither gives
        ``default_text``. ``usage=(prompt, completion[, cached])``; a missing or 0 entry is
        derived from the request/reply length. ``latency`` seconds pass before the answer.
        """
        item = Scripted(text, list(tool_calls), usage, model, finish_reason, latency=latency)
        self._push("openai", item, times)

    def script_anthropic(
        self,
        text: str | None = None,
        *,
        tool_uses: Iterable[tuple[str, dict[str, Any]]] = (),
        usage: tuple[int, ...] | None = None,
        model: str | None = None,
        stop_reason: str | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue one message, like ``script_openai``; ``tool_uses=[(name, input_dict)]``.

        ``usage=(input, output[, cache_creation[, cache_read]])``.
        """
        item = Scripted(text, list(tool_uses), usage, model, stop_reason, latency=latency)
        self._push("anthropic", item, times)

    def script_error(
        self,
        family: str,
        status: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue an error in the provider's wire shape for a route family (see ``FAMILIES``).

        ``retry_after`` sets the ``retry-after`` header; ``message``/``error_type`` override the
        defaults; ``code`` is OpenAI's ``error.code`` ("" sends null); ``headers`` are added.
        """
        item = Scripted(
            status=status,
            message=message,
            code=code,
            error_type=error_type,
            retry_after=retry_after,
            headers=dict(headers or {}),
            latency=latency,
        )
        self._push(family, item, times)

    def _push(self, family: str, item: Scripted, times: int) -> None:
        if family not in self._queues:
            raise ValueError(f"unknown route family {family!r}; one of {FAMILIES}")
        with self._lock:
            self._queues[family].extend([item] * times)

    def pending(self, family: str) -> int:
        """How many scripted responses of a family are not consumed yet."""
        with self._lock:
            return len(self._queues[family])

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        """Forget recorded requests, scripted responses, key and model restrictions."""
        with self._lock:
            self._requests.clear()
            for queue in self._queues.values():
                queue.clear()
            self.valid_keys, self.model_access = None, {}
            self.max_in_flight = 0

    # -- HTTP -----------------------------------------------------------------------------------
    async def _record(self, request: Request) -> tuple[RecordedRequest, bytes]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        bearer = headers.get("authorization", "")
        key = headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url, now = request.url, time.monotonic()
        recorded = RecordedRequest(request.method, url.path, url.query, headers, body, key, now)
        with self._lock:
            self._requests.append(recorded)
        return recorded, raw

    async def _dispatch(self, request: Request) -> Response:
        req, raw = await self._record(request)
        family = ROUTES.get((req.method, req.path))
        if family == "openai_models" and "anthropic-version" in req.headers:
            family = "anthropic_models"
        anthropic = req.path.startswith("/v1/messages") or family == "anthropic_models"
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(req, raw, family)
        except FakeLLMError as err:
            return self._error(anthropic, err)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, req: RecordedRequest, raw: bytes, family: str | None) -> Response:
        """Checks in the real APIs' order (route, body, key, params, model), then the script."""
        if family is None:
            raise FakeLLMError(404, message=f"Invalid URL ({req.method} {req.path})", code="")
        if raw and not isinstance(req.body, dict):
            raise FakeLLMError(400, message="Invalid JSON body.")
        key = req.api_key
        if not key or (self.valid_keys is not None and key not in self.valid_keys):
            raise FakeLLMError(401, key=_mask(key))
        body: dict[str, Any] = req.body or {}
        self._validate(family, body, req.headers)
        allowed = self.model_access.get(key)
        if allowed is not None and "model" in body and body["model"] not in allowed:
            raise FakeLLMError(404, model=str(body["model"]))
        with self._lock:
            queue = self._queues[family]
            item = queue.popleft() if queue else Scripted(latency=self.default_latency)
        if item.latency:
            await asyncio.sleep(item.latency)
        if item.status >= 400:
            raise FakeLLMError(item.status, item, key=_mask(key), model=str(body.get("model")))
        handler: Callable[[Call], Response] = getattr(self, f"_{family}")
        return handler(Call(body, item, key))

    def _validate(self, family: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        required = {
            "openai": ("model", "messages"),
            "openai_embeddings": ("model", "input"),
            "anthropic": ("model", "messages", "max_tokens"),
            "anthropic_count_tokens": ("model", "messages"),
        }.get(family, ())
        missing = [name for name in required if name not in body]
        problem = f"{missing[0]}: Field required" if missing else None
        if family.startswith("anthropic") and "anthropic-version" not in headers:
            problem = "anthropic-version: header is required"
        version = headers.get("anthropic-version")
        if family == "anthropic" and version == "2026-10-21":
            sampling = [p for p in SAMPLING_PARAMS if p in body]
            problem = f"{sampling[0]}: not supported by this API version" if sampling else problem
        if problem:
            raise FakeLLMError(400, message=problem)

    def _error(self, anthropic: bool, err: FakeLLMError) -> Response:
        item, status = err.item, err.status
        request_id = _id("req_")
        headers = {"request-id" if anthropic else "x-request-id": request_id}
        if item.retry_after is not None:
            headers["retry-after"] = f"{item.retry_after:g}"
        headers.update(item.headers)
        if anthropic:
            kind, message = ANTHROPIC_ERRORS.get(status, ("api_error", "Error"))
            error = {"type": item.error_type or kind, "message": item.message or message}
            payload = {"type": "error", "error": error, "request_id": request_id}
        else:
            kind, code, message = OPENAI_ERRORS.get(status, ("server_error", None, "Error"))
            error = {
                "message": item.message or message,
                "type": item.error_type or kind,
                "param": None,
                "code": (item.code or None) if item.code is not None else code,  # "" -> null
            }
            payload = {"error": error}
        if "{" in error["message"]:
            error["message"] = error["message"].format_map({"key": "***", "model": "?", **err.fmt})
        return JSONResponse(payload, status_code=status, headers=headers)

    # -- OpenAI ---------------------------------------------------------------------------------
    def _openai(self, call: Call) -> Response:
        body, item = call.body, call.item
        text = item.text if item.text is not None or item.tools else self.default_text
        calls = [
            {
                "id": _id("call_"),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for name, args in item.tools
        ]
        prompt, completion, cached = (*(item.usage or ()), 0, 0, 0)[:3]
        prompt = prompt or _tokens(body.get("messages"), body.get("tools"))
        completion = completion or _tokens(text, *(c["function"]["arguments"] for c in calls))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        finish = item.stop or ("tool_calls" if calls else "stop")
        base = {
            "id": _id("chatcmpl-"),
            "created": int(time.time()),
            "model": item.model or body["model"],
            "system_fingerprint": "fp_fake",
        }
        headers = {"x-request-id": _id("req_"), **OPENAI_HEADERS}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self._openai_stream(
                base, text, calls, finish, usage if include_usage else None
            )
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if calls:
            message["tool_calls"] = calls
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        payload = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return JSONResponse(payload, headers=headers)

    @staticmethod
    async def _openai_stream(
        base: dict[str, Any],
        text: str | None,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, Any] | None,
    ) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            data = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            return _sse({**data, "usage": None} if usage else data)

        yield chunk({"role": "assistant", "content": "" if text else None, "refusal": None})
        for piece in _pieces(text or ""):
            yield chunk({"content": piece})
        for index, call in enumerate(calls):
            function = {"name": call["function"]["name"], "arguments": ""}
            yield chunk({"tool_calls": [{"index": index, **call, "function": function}]})
            for piece in _chunks(call["function"]["arguments"]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, finish)
        if usage:
            yield _sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"

    def _openai_embeddings(self, call: Call) -> Response:
        body = call.body
        raw = body["input"]
        inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
        default_dims = 3072 if "large" in str(body["model"]) else 1536
        dims = int(body.get("dimensions") or default_dims)
        data = []
        for index, value in enumerate(inputs):
            vector = _vector(value if isinstance(value, str) else json.dumps(value), dims)
            if body.get("encoding_format") == "base64":  # the openai SDK's default
                packed: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            else:
                packed = vector
            data.append({"object": "embedding", "index": index, "embedding": packed})
        tokens = sum(_tokens(v) for v in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    def _openai_models(self, call: Call) -> Response:
        data = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
            for m in self._visible(self.openai_models, call.key)
        ]
        return JSONResponse({"object": "list", "data": data})

    def _visible(self, models: list[str], key: str | None) -> list[str]:
        allowed = self.model_access.get(key or "")
        return [m for m in models if allowed is None or m in allowed]

    # -- Anthropic ------------------------------------------------------------------------------
    def _anthropic(self, call: Call) -> Response:
        body, item = call.body, call.item
        text = item.text if item.text is not None or item.tools else self.default_text
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        content += [
            {"type": "tool_use", "id": _id("toolu_"), "name": name, "input": args}
            for name, args in item.tools
        ]
        given = (*(item.usage or ()), 0, 0, 0, 0)[:4]
        usage = {
            "input_tokens": given[0] or self._input_tokens(body),
            "output_tokens": given[1] or _tokens(text, *(b.get("input") for b in content)),
            "cache_creation_input_tokens": given[2],
            "cache_read_input_tokens": given[3],
        }
        message = {
            "id": _id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": item.model or body["model"],
            "content": content,
            "stop_reason": item.stop or ("tool_use" if item.tools else "end_turn"),
            "stop_sequence": None,
            "usage": usage,
        }
        headers = {"request-id": _id("req_"), **ANTHROPIC_HEADERS}
        if body.get("stream"):
            events = self._anthropic_stream(message)
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        return JSONResponse(message, headers=headers)

    @staticmethod
    async def _anthropic_stream(message: dict[str, Any]) -> AsyncIterator[str]:
        start_usage = {**message["usage"], "output_tokens": 1}
        start = {**message, "content": [], "stop_reason": None, "usage": start_usage}
        yield _sse({"type": "message_start", "message": start}, "message_start")
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                opening = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
            else:
                opening = {**block, "input": {}}
                pieces = _chunks(json.dumps(block["input"]))
                deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
            event = {"type": "content_block_start", "index": index, "content_block": opening}
            yield _sse(event, "content_block_start")
            if index == 0:
                yield _sse({"type": "ping"}, "ping")
            for delta in deltas:
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                yield _sse(event, "content_block_delta")
            yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
        delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        event = {"type": "message_delta", "delta": delta, "usage": message["usage"]}
        yield _sse(event, "message_delta")
        yield _sse({"type": "message_stop"}, "message_stop")

    @staticmethod
    def _input_tokens(body: dict[str, Any]) -> int:
        return _tokens(body.get("system"), body.get("messages"), body.get("tools"))

    def _anthropic_count_tokens(self, call: Call) -> Response:
        return JSONResponse({"input_tokens": self._input_tokens(call.body)})

    def _anthropic_models(self, call: Call) -> Response:
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2025-09-29T00:00:00Z",
            }
            for m in self._visible(self.anthropic_models, call.key)
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return JSONResponse({"data": data, "has_more": False, "first_id": first, "last_id": last})
