"""A typed client of the opshub API, sync and async, over httpx.

Requests are described once in ``opshub.client.calls`` and sent by either client::

    from opshub.client import Client, calls

    with Client("http://127.0.0.1:8000", api_key) as hub:
        task = hub.send(calls.submit_task(input="Which leads should we follow up?"))
        for event in hub.events(task.id):
            print(event.type, event.text)
        failed = list(hub.pages(lambda cursor: calls.list_tasks(status="failed", cursor=cursor)))

Error answers raise ``opshub.client.errors.ApiError`` subclasses (``NotFoundError``,
``ConflictError``, …) carrying the envelope's ``code``, ``message`` and ``details``.
"""

from opshub.client import calls
from opshub.client.aio import AsyncClient
from opshub.client.errors import ApiError, HubUnreachableError, OpshubError
from opshub.client.sync import Client

__all__ = ["ApiError", "AsyncClient", "Client", "HubUnreachableError", "OpshubError", "calls"]
