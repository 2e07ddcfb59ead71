"""The four kinds of tenant data, described once so one service and one router serve them all."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from opshub.data import schemas


@dataclass(frozen=True)
class Resource:
    name: str
    singular: str
    table: str
    create: type[BaseModel]
    update: type[BaseModel]
    read: type[BaseModel]
    filters: tuple[str, ...]
    """Columns a list can be filtered on by equality."""
    searchable: tuple[str, ...]
    """Columns that ``q`` matches, case-insensitively."""


RESOURCES: dict[str, Resource] = {
    resource.name: resource
    for resource in (
        Resource(
            name="clients",
            singular="client",
            table="clients",
            create=schemas.ClientCreate,
            update=schemas.ClientUpdate,
            read=schemas.ClientRead,
            filters=("industry",),
            searchable=("name", "email", "website"),
        ),
        Resource(
            name="leads",
            singular="lead",
            table="leads",
            create=schemas.LeadCreate,
            update=schemas.LeadUpdate,
            read=schemas.LeadRead,
            filters=("status", "source", "client_id"),
            searchable=("name", "email", "company"),
        ),
        Resource(
            name="campaigns",
            singular="campaign",
            table="campaigns",
            create=schemas.CampaignCreate,
            update=schemas.CampaignUpdate,
            read=schemas.CampaignRead,
            filters=("status", "channel", "client_id"),
            searchable=("name", "objective"),
        ),
        Resource(
            name="reports",
            singular="report",
            table="reports",
            create=schemas.ReportCreate,
            update=schemas.ReportUpdate,
            read=schemas.ReportRead,
            filters=("kind",),
            searchable=("title", "body"),
        ),
    )
}
