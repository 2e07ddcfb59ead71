"""What every request body and query shares: unknown fields refused, text PostgreSQL can store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator


def _storable(value: Any) -> Any:
    # PostgreSQL text and jsonb can't hold NUL; refuse it here rather than fail at INSERT.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, list):
        for item in value:
            _storable(item)
    return value


# JSON Schema (ECMA) for "no NUL anywhere": what ``_storable`` enforces, written into the OpenAPI.
NO_NUL_PATTERN = "^[^\\u0000]*$"


def _mark_text(node: dict[str, Any]) -> None:
    if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(node):
        node["pattern"] = NO_NUL_PATTERN
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            _mark_text(option)
    if isinstance(node.get("items"), dict):
        _mark_text(node["items"])


def _document_no_nul(schema: dict[str, Any]) -> None:
    """The published schema says text may not hold NUL, so a client (or schemathesis) that
    follows it never meets a 422 the schema did not announce."""
    for field_schema in schema.get("properties", {}).values():
        _mark_text(field_schema)


class StrictInput(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_document_no_nul
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _storable(value)


def _to_utc(value: datetime) -> datetime:
    """Aware datetimes in UTC (naive ones are taken as UTC); out of range after that is invalid."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date is out of range once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
