"""The tenant's business data: clients, leads, campaigns and reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from opshub.client.calls.base import Call, body, call, no_content
from opshub.data.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    ClientCreate,
    ClientRead,
    ClientUpdate,
    ImportResult,
    LeadCreate,
    LeadRead,
    LeadUpdate,
    ReportCreate,
    ReportRead,
    ReportUpdate,
)

ReadT = TypeVar("ReadT", bound=BaseModel)


class DataPage(BaseModel, Generic[ReadT]):
    items: list[ReadT]
    next_cursor: str | None


def _list(
    resource: str,
    read: type[ReadT],
    filters: dict[str, Any],
    *,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Call[DataPage[ReadT]]:
    params = {**filters, "q": q, "cursor": cursor, "limit": limit}
    page = DataPage[read]  # type: ignore[valid-type]
    return call("GET", f"/v1/data/{resource}", page, params=params)


def _import(resource: str, rows: Sequence[BaseModel] | str) -> Call[ImportResult]:
    """Rows as models, or CSV text with a header line."""
    path = f"/v1/data/{resource}/import"
    if isinstance(rows, str):
        csv = {"Content-Type": "text/csv"}
        return call("POST", path, ImportResult, content=rows.encode(), headers=csv)
    return call("POST", path, ImportResult, json={"items": [body(row) for row in rows]})


def list_clients(
    *,
    industry: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[DataPage[ClientRead]]:
    filters = {"industry": industry}
    return _list("clients", ClientRead, filters, q=q, cursor=cursor, limit=limit)


def get_client(client_id: uuid.UUID | str) -> Call[ClientRead]:
    return call("GET", f"/v1/data/clients/{client_id}", ClientRead)


def create_client(client: ClientCreate) -> Call[ClientRead]:
    return call("POST", "/v1/data/clients", ClientRead, json=body(client))


def update_client(client_id: uuid.UUID | str, changes: ClientUpdate) -> Call[ClientRead]:
    return call("PATCH", f"/v1/data/clients/{client_id}", ClientRead, json=body(changes))


def delete_client(client_id: uuid.UUID | str) -> Call[None]:
    return no_content("DELETE", f"/v1/data/clients/{client_id}")


def import_clients(rows: Sequence[ClientCreate] | str) -> Call[ImportResult]:
    return _import("clients", rows)


def list_leads(
    *,
    status: str | None = None,
    source: str | None = None,
    client_id: uuid.UUID | str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[DataPage[LeadRead]]:
    filters = {"status": status, "source": source, "client_id": client_id}
    return _list("leads", LeadRead, filters, q=q, cursor=cursor, limit=limit)


def get_lead(lead_id: uuid.UUID | str) -> Call[LeadRead]:
    return call("GET", f"/v1/data/leads/{lead_id}", LeadRead)


def create_lead(lead: LeadCreate) -> Call[LeadRead]:
    return call("POST", "/v1/data/leads", LeadRead, json=body(lead))


def update_lead(lead_id: uuid.UUID | str, changes: LeadUpdate) -> Call[LeadRead]:
    return call("PATCH", f"/v1/data/leads/{lead_id}", LeadRead, json=body(changes))


def delete_lead(lead_id: uuid.UUID | str) -> Call[None]:
    return no_content("DELETE", f"/v1/data/leads/{lead_id}")


def import_leads(rows: Sequence[LeadCreate] | str) -> Call[ImportResult]:
    return _import("leads", rows)


def list_campaigns(
    *,
    status: str | None = None,
    channel: str | None = None,
    client_id: uuid.UUID | str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[DataPage[CampaignRead]]:
    filters = {"status": status, "channel": channel, "client_id": client_id}
    return _list("campaigns", CampaignRead, filters, q=q, cursor=cursor, limit=limit)


def get_campaign(campaign_id: uuid.UUID | str) -> Call[CampaignRead]:
    return call("GET", f"/v1/data/campaigns/{campaign_id}", CampaignRead)


def create_campaign(campaign: CampaignCreate) -> Call[CampaignRead]:
    return call("POST", "/v1/data/campaigns", CampaignRead, json=body(campaign))


def update_campaign(campaign_id: uuid.UUID | str, changes: CampaignUpdate) -> Call[CampaignRead]:
    return call("PATCH", f"/v1/data/campaigns/{campaign_id}", CampaignRead, json=body(changes))


def delete_campaign(campaign_id: uuid.UUID | str) -> Call[None]:
    return no_content("DELETE", f"/v1/data/campaigns/{campaign_id}")


def import_campaigns(rows: Sequence[CampaignCreate] | str) -> Call[ImportResult]:
    return _import("campaigns", rows)


def list_reports(
    *,
    kind: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Call[DataPage[ReportRead]]:
    filters = {"kind": kind}
    return _list("reports", ReportRead, filters, q=q, cursor=cursor, limit=limit)


def get_report(report_id: uuid.UUID | str) -> Call[ReportRead]:
    return call("GET", f"/v1/data/reports/{report_id}", ReportRead)


def create_report(report: ReportCreate) -> Call[ReportRead]:
    return call("POST", "/v1/data/reports", ReportRead, json=body(report))


def update_report(report_id: uuid.UUID | str, changes: ReportUpdate) -> Call[ReportRead]:
    return call("PATCH", f"/v1/data/reports/{report_id}", ReportRead, json=body(changes))


def delete_report(report_id: uuid.UUID | str) -> Call[None]:
    return no_content("DELETE", f"/v1/data/reports/{report_id}")


def import_reports(rows: Sequence[ReportCreate] | str) -> Call[ImportResult]:
    return _import("reports", rows)
