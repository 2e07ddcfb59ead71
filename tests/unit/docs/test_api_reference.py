"""docs/api.md stays the whole API: every endpoint the app serves, every event type a run emits
and every error code a domain error carries is in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opshub.app import create_app
from opshub.config import Settings
from opshub.db.engine import DatabaseUrls
from opshub.errors import DomainError
from opshub.tasks.models import EventType

REFERENCE = (Path(__file__).parents[3] / "docs" / "api.md").read_text()
AUTH_CODES = ["missing_credentials", "invalid_credentials", "invalid_api_key", "invalid_token",
              "token_expired", "method_not_allowed", "payload_too_large"]  # fmt: skip
DATA = re.compile(r"^/v1/data/(clients|leads|campaigns|reports)")


def served_endpoints() -> list[str]:
    urls = DatabaseUrls(owner="postgresql+asyncpg://o@/x", app="postgresql+asyncpg://a@/x")
    app = create_app(Settings(data_dir=Path("/nonexistent")), urls)
    return sorted(
        {
            f"{method.upper()} {DATA.sub('/v1/data/{resource}', path)}"
            for path, operations in app.openapi()["paths"].items()
            for method in operations
        }
    )


def every_subclass(cls: type[DomainError]) -> list[type[DomainError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in every_subclass(child))]


@pytest.mark.parametrize("endpoint", served_endpoints())
def test_every_endpoint_is_documented(endpoint: str) -> None:
    assert re.search(rf"`{re.escape(endpoint)}[`?]", REFERENCE), endpoint


@pytest.mark.parametrize("event_type", [*EventType, "task.retrying"])
def test_every_event_type_is_documented(event_type: str) -> None:
    assert f"| `{event_type}` |" in REFERENCE


def test_every_error_code_is_documented() -> None:
    import opshub.api.app  # noqa: F401 - imports every domain, so every error class exists

    codes = {cls.code for cls in every_subclass(DomainError)} - {"error", "cancelled"}
    missing = [code for code in sorted(codes) + AUTH_CODES if f"| `{code}` |" not in REFERENCE]
    assert not missing
