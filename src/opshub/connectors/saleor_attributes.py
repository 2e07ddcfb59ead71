"""A product type's variant attributes, and the values a proposal gives them.

Saleor refuses a variant that leaves a required attribute of its product type empty
(``All required attributes must take a value``), so a proposal is checked against the type
before anyone approves it, and the executor checks again before it writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from opshub.connectors.errors import ConnectorRequestError
from opshub.connectors.saleor import ATTRIBUTE_FIELDS, SALEOR

Obj = dict[str, Any]
WITH_CHOICES = ("DROPDOWN", "SWATCH", "MULTISELECT")


def _describe(attribute: Obj) -> str:
    kind = attribute["input_type"]
    choices = attribute.get("choices") or []
    if kind in WITH_CHOICES and choices:
        return f"'{attribute['name']}' ({kind}: one of {', '.join(choices)})"
    return f"'{attribute['name']}' ({kind})"


def _fits(kind: str, value: str) -> bool:
    """Whether a BOOLEAN, NUMERIC or DATE attribute can take ``value`` (others take any text)."""
    if kind == "BOOLEAN":
        return value.lower() in ("true", "false", "yes", "no", "1", "0")
    try:
        if kind == "NUMERIC":
            Decimal(value)
        elif kind == "DATE":
            date.fromisoformat(value)
    except (InvalidOperation, ValueError):
        return False
    return True


def fill_variant_attributes(product_type: Obj, given: Mapping[str, str | list[str]]) -> list[Obj]:
    """``given`` (attribute name or slug -> value or values) as ``[{"id", "name", "input_type",
    "values"}]`` for ``product_type``'s variant attributes; refused with a sentence naming each
    attribute that is missing, unknown or given a value it does not offer."""
    attributes = product_type.get("variant_attributes") or []
    by_key = {str(a[k]).casefold(): a for a in attributes for k in ("name", "slug", "id")}
    problems: list[str] = []
    filled: dict[str, Obj] = {}
    for key, raw in given.items():
        attribute = by_key.get(key.strip().casefold())
        if attribute is None:
            offered = ", ".join(f"'{a['name']}'" for a in attributes) or "none"
            problems.append(f"'{key}' is not a variant attribute of it (it has {offered})")
            continue
        values = [v.strip() for v in ([raw] if isinstance(raw, str) else raw) if v.strip()]
        kind = attribute["input_type"]
        if kind not in ATTRIBUTE_FIELDS:
            problems.append(f"'{attribute['name']}' is a {kind} attribute, which opshub can't fill")
            continue
        choices = {c.casefold(): c for c in attribute.get("choices") or []}
        if kind in WITH_CHOICES and choices:
            unknown = [v for v in values if v.casefold() not in choices]
            if unknown:
                problems.append(f"{', '.join(unknown)} is not a value of {_describe(attribute)}")
                continue
            values = [choices[v.casefold()] for v in values]
        if len(values) > 1 and kind != "MULTISELECT":
            problems.append(f"'{attribute['name']}' takes one value, not {len(values)}")
            continue
        if values and not _fits(kind, values[0]):
            problems.append(f"{values[0]} is not a value of {_describe(attribute)}")
            continue
        if values:
            filled[attribute["id"]] = {
                "id": attribute["id"],
                "name": attribute["name"],
                "input_type": kind,
                "values": values,
            }
    missing = [a for a in attributes if a["required"] and a["id"] not in filled]
    problems.extend(f"it requires a value for {_describe(a)}" for a in missing)
    if problems:
        raise ConnectorRequestError(
            SALEOR,
            f"product type '{product_type['name']}': {'; '.join(problems)}. Give them in "
            "`attributes` as {attribute name: value}",
        )
    return list(filled.values())


def missing_required(product_type: Obj, filled: list[Obj]) -> list[str]:
    """Names of required variant attributes ``filled`` has no value for."""
    given = {a["id"] for a in filled if a["values"]}
    return [
        a["name"]
        for a in product_type.get("variant_attributes") or []
        if a["required"] and a["id"] not in given
    ]
