"""Stored credentials: what the hub shows about a key, and (embedded backend) the key encrypted."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Integer, LargeBinary, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from opshub.db.base import Base, TenantOwned


class Provider(StrEnum):
    openai = "openai"
    anthropic = "anthropic"
    openai_compatible = "openai_compatible"
    google_ads = "google_ads"
    meta_ads = "meta_ads"
    linkedin_ads = "linkedin_ads"
    amazon_creators = "amazon_creators"
    saleor = "saleor"


MODEL_PROVIDERS = frozenset({Provider.openai, Provider.anthropic, Provider.openai_compatible})


class Health(StrEnum):
    unchecked = "unchecked"
    healthy = "healthy"
    invalid = "invalid"
    rate_limited = "rate_limited"
    unreachable = "unreachable"


class Source(StrEnum):
    byok = "byok"
    platform = "platform"
    none = "none"


class Credential(TenantOwned, Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("tenant_id", "provider"),)

    provider: Mapped[str] = mapped_column(Text, nullable=False)
    label: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False)
    last4: Mapped[str] = mapped_column(Text, nullable=False)
    backend: Mapped[str] = mapped_column(Text, nullable=False)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="unchecked")
    status_detail: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class TenantDataKey(Base):
    """A tenant's data key, wrapped (AES-256-GCM) by the master key named by ``master_key_id``."""

    __tablename__ = "tenant_data_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    master_key_id: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
