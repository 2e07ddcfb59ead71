"""The blocking client, for scripts and the ``opshub`` command."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self, TypeVar

import httpx

from opshub.client import calls
from opshub.client.errors import HubUnreachableError, from_response
from opshub.client.sse import RUN_ENDED, Decoder, HubEvent, Message
from opshub.tasks.schemas import TaskEvent

T = TypeVar("T")


class Client:
    """``with Client(url, api_key) as hub: task = hub.send(calls.submit_task(input="…"))``.

    Every error answer raises the ``opshub.client.errors`` exception for its status, carrying
    the envelope's ``code``, ``message`` and ``details``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            # A stream waits as long as the run takes; every other read within the timeout.
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: calls.Call[T]) -> T:
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                content=call.content,
                headers=call.headers,
            )
        except httpx.TransportError as exc:
            raise HubUnreachableError(f"no answer from {self._http.base_url}: {exc!r}") from exc
        if response.status_code >= 400:
            raise from_response(response)
        return call.read(response.content)

    def pages(self, call: Callable[[str | None], calls.Call[calls.Page[T]]]) -> Iterator[T]:
        """Every item of a listing, following ``next_cursor``:
        ``hub.pages(lambda cursor: calls.list_tasks(status="failed", cursor=cursor))``."""
        cursor: str | None = None
        while True:
            page = self.send(call(cursor))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def events(self, task_id: uuid.UUID | str, *, after: int = 0) -> Iterator[TaskEvent]:
        """A task's events as they happen (after seq ``after``), until its run ends."""
        headers = {"Last-Event-ID": str(after)} if after else {}
        for message in self._messages(f"/v1/tasks/{task_id}/events", headers, {}):
            event = TaskEvent.model_validate(message.data)
            yield event
            if event.type in RUN_ENDED:
                return

    def tenant_events(self, *, after: int | None = None) -> Iterator[HubEvent]:
        """The tenant's events as they commit, for as long as the caller reads: from what
        happens next, or after the cursor ``after`` (an event's ``cursor``)."""
        params = {"after": str(after)} if after is not None else {}
        for message in self._messages("/v1/events", {}, params):
            yield message.hub_event()

    def _messages(
        self, path: str, headers: dict[str, str], params: dict[str, str]
    ) -> Iterator[Message]:
        # A stream waits as long as the events take; only connecting has the timeout.
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        decoder = Decoder()
        try:
            with self._http.stream(
                "GET", path, headers=headers, params=params, timeout=timeout
            ) as stream:
                if stream.status_code == 204:
                    return
                if stream.status_code >= 400:
                    stream.read()
                    raise from_response(stream)
                for line in stream.iter_lines():
                    message = decoder.feed(line)
                    if message is not None:
                        yield message
        except httpx.TransportError as exc:
            raise HubUnreachableError(f"the event stream broke off: {exc!r}") from exc
