"""Request bodies over ``max_request_body_bytes`` are refused with 413 before anything parses them.

A declared ``Content-Length`` over the cap is answered without reading a byte; a body sent in
chunks is counted as it arrives and refused once it passes the cap, so no route ever holds more
than the cap in memory.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opshub.api.errors import error_response


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is over {self.max_bytes} bytes"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            # The rest of the body is never read: the connection can't carry another request.
            response = error_response(
                413, "payload_too_large", message, headers={"Connection": "close"}
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes an HTTPException from reading the body on to its handler.
                    raise HTTPException(413, message)
            return incoming

        await self.app(scope, counting_receive, send)
