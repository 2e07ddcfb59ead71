"""The tenant's own business data that agents read: clients, leads, campaigns and reports."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from opshub.db.base import Base, TenantOwned


class Updatable:
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


def _client_reference() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "client_id"],
        ["clients.tenant_id", "clients.id"],
        ondelete="SET NULL (client_id)",
    )


class Client(TenantOwned, Updatable, Base):
    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    name: Mapped[str] = mapped_column(Text, nullable=False)
    industry: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


class Lead(TenantOwned, Updatable, Base):
    __tablename__ = "leads"
    __table_args__ = (_client_reference(),)

    client_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(Text, nullable=False)
    email: Mapped[str | None] = mapped_column(Text)
    company: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="new")
    score: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    next_follow_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Campaign(TenantOwned, Updatable, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        _client_reference(),
        CheckConstraint("end_date >= start_date", name="dates"),
    )

    client_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(Text, nullable=False)
    channel: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="draft")
    objective: Mapped[str | None] = mapped_column(Text)
    daily_budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    external_id: Mapped[str | None] = mapped_column(Text)


class Report(TenantOwned, Updatable, Base):
    __tablename__ = "reports"
    __table_args__ = (CheckConstraint("period_end >= period_start", name="period"),)

    title: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False, server_default="general")
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    body: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    author: Mapped[str | None] = mapped_column(Text)
