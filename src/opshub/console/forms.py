"""Console forms validate as the API validates: the API's request schemas and the domain's own
errors, each message put next to the field it is about."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from opshub.errors import DomainError

FORM = "_form"  # errors about no one field: shown above the form
Schema = TypeVar("Schema", bound=BaseModel)


class FormErrors(Exception):
    """Field name -> "code: message", as the API's ``details.fields`` would name them."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__("the form is not valid")
        self.fields = dict(fields)


def parse(schema: type[Schema], data: Mapping[str, Any]) -> Schema:
    """The API's request body schema, fed the form's fields."""
    try:
        return schema.model_validate(dict(data))
    except ValidationError as exc:
        raise FormErrors(
            {
                ".".join(str(part) for part in error["loc"]) or FORM: error["msg"]
                for error in exc.errors()
            }
        ) from exc


def domain_errors(exc: DomainError, field: str = FORM) -> FormErrors:
    """A service's refusal: on the fields its details name (``body.cron`` -> ``cron``), else on
    ``field``; the machine-readable code travels with the words."""
    named = (exc.details or {}).get("fields") or []
    fields: dict[str, str] = {}
    for entry in named:
        loc = str(entry.get("loc", "")).removeprefix("body.").removeprefix("query.")
        fields[loc or field] = f"{exc.message} ({exc.code})"
    return FormErrors(fields or {field: f"{exc.message} ({exc.code})"})
