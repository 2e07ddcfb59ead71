"""CSV import parsing and pagination cursors, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from opshub.data import service
from opshub.data.resources import RESOURCES
from opshub.errors import InvalidInputError


def test_csv_empty_cells_are_absent_and_json_cells_become_objects() -> None:
    body = b'name,industry,attributes\nSummit Gear,,"{""tier"": ""gold""}"\n'
    assert service.parse_csv(body, resource=RESOURCES["clients"]) == [
        {"name": "Summit Gear", "attributes": {"tier": "gold"}}
    ]


def test_csv_with_a_byte_order_mark_reads_the_first_header() -> None:
    rows = service.parse_csv("\ufeffname\nJane\n".encode(), resource=RESOURCES["leads"])
    assert rows == [{"name": "Jane"}]


def test_csv_with_an_unknown_column_is_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="favourite_colour"):
        service.parse_csv(b"name,favourite_colour\nJane,blue\n", resource=RESOURCES["leads"])


def test_csv_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="UTF-8"):
        service.parse_csv("name\nJos\xe9\n".encode("latin-1"), resource=RESOURCES["leads"])


def test_a_cursor_decodes_to_the_position_it_encodes() -> None:
    created_at, row_id = datetime(2026, 11, 25, 9, 30, tzinfo=UTC), uuid.uuid4()
    assert service.decode_cursor(service.encode_cursor(created_at, row_id)) == (created_at, row_id)


@pytest.mark.parametrize("cursor", ["not-base64!", "bm90IGpzb24", "WyJ4Il0"])
def test_a_cursor_we_did_not_issue_is_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInputError):
        service.decode_cursor(cursor)
