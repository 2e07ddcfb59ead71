"""Load the model SDKs' lazily imported code before a worker claims its first task.

The openai client imports some 500 modules on its first call: about 200 ms of one core, under
the import lock. A fresh worker's first runs would all pay it at once, and every event of the
worker wait behind it. One streamed call, answered in-process by a mock transport (nothing
leaves the machine), loads it all before the first claim. anthropic loads its call path when
imported, which this module does.
"""

from __future__ import annotations

import json

import anthropic  # noqa: F401 - imported for its side effect: the client's code is loaded
import httpx
import openai


def _openai_answer(_request: httpx.Request) -> httpx.Response:
    chunk = {
        "id": "warm-up",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "warm-up",
        "choices": [{"index": 0, "delta": {"content": "ready"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def warm_up_model_sdks() -> None:
    """Blocking (about 0.2 s on first use); run it in a thread."""
    with httpx.Client(transport=httpx.MockTransport(_openai_answer)) as http:
        client = openai.OpenAI(
            api_key="warm-up-not-a-key", base_url="http://warm-up.invalid/v1", http_client=http
        )
        stream = client.chat.completions.create(
            model="warm-up", messages=[{"role": "user", "content": "ready?"}], stream=True
        )
        for _chunk in stream:
            pass
