"""Tasks, their webhook deliveries, crews and schedules."""

from __future__ import annotations

import uuid
from typing import Any

from opshub.client.calls.base import Call, body, call, no_content
from opshub.crews.schemas import CrewRead
from opshub.schedules.schemas import ScheduleCreate, ScheduleRead, ScheduleUpdate
from opshub.tasks.schemas import TaskPage, TaskRead
from opshub.webhooks.schemas import WebhookDelivery, WebhookDeliveryPage


def submit_task(
    *,
    input: str,
    crew: str | None = None,
    inputs: dict[str, Any] | None = None,
    thread_id: uuid.UUID | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
    webhook_url: str | None = None,
) -> Call[TaskRead]:
    sent: dict[str, Any] = {"input": input, "priority": priority}
    optional = {"crew": crew, "inputs": inputs, "webhook_url": webhook_url}
    sent.update({k: v for k, v in optional.items() if v is not None})
    if thread_id is not None:
        sent["thread_id"] = str(thread_id)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    return call("POST", "/v1/tasks", TaskRead, json=sent, headers=headers)


def get_task(task_id: uuid.UUID | str) -> Call[TaskRead]:
    return call("GET", f"/v1/tasks/{task_id}", TaskRead)


def list_tasks(
    *,
    status: str | None = None,
    crew: str | None = None,
    thread_id: uuid.UUID | str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[TaskPage]:
    params = {"status": status, "crew": crew, "thread_id": thread_id, "cursor": cursor}
    return call("GET", "/v1/tasks", TaskPage, params={**params, "limit": limit})


def cancel_task(task_id: uuid.UUID | str) -> Call[TaskRead]:
    return call("POST", f"/v1/tasks/{task_id}/cancel", TaskRead)


def retry_task(task_id: uuid.UUID | str) -> Call[TaskRead]:
    return call("POST", f"/v1/tasks/{task_id}/retry", TaskRead)


def list_task_webhooks(task_id: uuid.UUID | str) -> Call[WebhookDeliveryPage]:
    return call("GET", f"/v1/tasks/{task_id}/webhooks", WebhookDeliveryPage)


def redeliver_task_webhook(task_id: uuid.UUID | str, delivery_id: int) -> Call[WebhookDelivery]:
    path = f"/v1/tasks/{task_id}/webhooks/{delivery_id}/redeliver"
    return call("POST", path, WebhookDelivery)


def list_crews() -> Call[list[CrewRead]]:
    return call("GET", "/v1/crews", list[CrewRead])


def put_crew_settings(name: str, *, provider: str, model: str) -> Call[CrewRead]:
    sent = {"provider": provider, "model": model}
    return call("PUT", f"/v1/crews/{name}/settings", CrewRead, json=sent)


def create_schedule(schedule: ScheduleCreate) -> Call[ScheduleRead]:
    return call("POST", "/v1/schedules", ScheduleRead, json=body(schedule))


def list_schedules() -> Call[list[ScheduleRead]]:
    return call("GET", "/v1/schedules", list[ScheduleRead])


def get_schedule(schedule_id: uuid.UUID | str) -> Call[ScheduleRead]:
    return call("GET", f"/v1/schedules/{schedule_id}", ScheduleRead)


def update_schedule(schedule_id: uuid.UUID | str, changes: ScheduleUpdate) -> Call[ScheduleRead]:
    return call("PATCH", f"/v1/schedules/{schedule_id}", ScheduleRead, json=body(changes))


def delete_schedule(schedule_id: uuid.UUID | str) -> Call[None]:
    return no_content("DELETE", f"/v1/schedules/{schedule_id}")


def list_runs(
    schedule_id: uuid.UUID | str, *, cursor: str | None = None, limit: int = 50
) -> Call[TaskPage]:
    params = {"cursor": cursor, "limit": limit}
    return call("GET", f"/v1/schedules/{schedule_id}/runs", TaskPage, params=params)
