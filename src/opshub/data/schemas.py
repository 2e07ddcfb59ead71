"""Create, update and read shapes of tenant data; in the update shapes every field is optional."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, model_validator

from opshub.schemas import StrictInput, UtcDatetime

Text = Annotated[str, Field(max_length=10_000)]
Name = Annotated[str, Field(min_length=1, max_length=500)]
LeadStatus = Literal["new", "contacted", "qualified", "won", "lost"]
CampaignStatus = Literal["draft", "active", "paused", "ended"]
Channel = Literal["google_ads", "meta_ads", "linkedin_ads", "email", "seo", "saleor", "other"]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class _Read(BaseModel):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class ClientCreate(StrictInput):
    name: Name
    industry: Text | None = None
    website: Text | None = None
    email: EmailStr | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    notes: Text | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class ClientUpdate(StrictInput):
    name: Name | None = None
    industry: Text | None = None
    website: Text | None = None
    email: EmailStr | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    notes: Text | None = None
    attributes: dict[str, Any] | None = None


class ClientRead(_Read):
    name: str
    industry: str | None
    website: str | None
    email: str | None
    phone: str | None
    notes: str | None
    attributes: dict[str, Any]


class LeadCreate(StrictInput):
    client_id: uuid.UUID | None = None
    name: Name
    email: EmailStr | None = None
    company: Text | None = None
    source: Text | None = None
    status: LeadStatus = "new"
    score: Annotated[int, Field(ge=0, le=100)] | None = None
    notes: Text | None = None
    next_follow_up_at: UtcDatetime | None = None


class LeadUpdate(StrictInput):
    client_id: uuid.UUID | None = None
    name: Name | None = None
    email: EmailStr | None = None
    company: Text | None = None
    source: Text | None = None
    status: LeadStatus | None = None
    score: Annotated[int, Field(ge=0, le=100)] | None = None
    notes: Text | None = None
    next_follow_up_at: UtcDatetime | None = None


class LeadRead(_Read):
    client_id: uuid.UUID | None
    name: str
    email: str | None
    company: str | None
    source: str | None
    status: LeadStatus
    score: int | None
    notes: str | None
    next_follow_up_at: datetime | None


class _CampaignDates(StrictInput):
    start_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> _CampaignDates:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class CampaignCreate(_CampaignDates):
    client_id: uuid.UUID | None = None
    name: Name
    channel: Channel
    status: CampaignStatus = "draft"
    objective: Text | None = None
    daily_budget: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] | None = None
    currency: Currency | None = None
    external_id: Text | None = None


class CampaignUpdate(_CampaignDates):
    client_id: uuid.UUID | None = None
    name: Name | None = None
    channel: Channel | None = None
    status: CampaignStatus | None = None
    objective: Text | None = None
    daily_budget: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] | None = None
    currency: Currency | None = None
    external_id: Text | None = None


class CampaignRead(_Read):
    client_id: uuid.UUID | None
    name: str
    channel: Channel
    status: CampaignStatus
    objective: str | None
    daily_budget: Decimal | None
    currency: str | None
    start_date: date | None
    end_date: date | None
    external_id: str | None


class _ReportPeriod(StrictInput):
    period_start: date | None = None
    period_end: date | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> _ReportPeriod:
        if self.period_start and self.period_end and self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class ReportCreate(_ReportPeriod):
    title: Name
    kind: Annotated[str, Field(min_length=1, max_length=100)] = "general"
    body: Annotated[str, Field(max_length=1_000_000)] = ""
    data: dict[str, Any] = Field(default_factory=dict)
    author: Text | None = None


class ReportUpdate(_ReportPeriod):
    title: Name | None = None
    kind: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    body: Annotated[str, Field(max_length=1_000_000)] | None = None
    data: dict[str, Any] | None = None
    author: Text | None = None


class ReportRead(_Read):
    title: str
    kind: str
    period_start: date | None
    period_end: date | None
    body: str
    data: dict[str, Any]
    author: str | None


class ImportResult(BaseModel):
    imported: int
    ids: list[uuid.UUID]
