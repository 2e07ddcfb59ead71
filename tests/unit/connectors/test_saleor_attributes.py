"""A proposal's variant attribute values against its product type, before anyone approves it."""

from __future__ import annotations

import pytest

from opshub.connectors.errors import ConnectorRequestError
from opshub.connectors.saleor import attribute_input
from opshub.connectors.saleor_attributes import fill_variant_attributes, missing_required

FORMAT = {"id": "QXR0cmlidXRlOjI=", "name": "Audiobook format", "slug": "audiobook-format",
          "input_type": "DROPDOWN", "required": True, "choices": ["MP3", "FLAC", "CD"]}  # fmt: skip
LENGTH = {"id": "QXR0cmlidXRlOjQ=", "name": "Length (h)", "slug": "length-h",
          "input_type": "NUMERIC", "required": False, "choices": None}  # fmt: skip
EXTRAS = {"id": "QXR0cmlidXRlOjU=", "name": "Extras", "slug": "extras",
          "input_type": "MULTISELECT", "required": False, "choices": ["PDF", "Poster"]}  # fmt: skip
COVER = {"id": "QXR0cmlidXRlOjY=", "name": "Cover", "slug": "cover", "input_type": "FILE",
         "required": False, "choices": None}  # fmt: skip
AUDIOBOOK = {"name": "Audiobook", "variant_attributes": [FORMAT, LENGTH, EXTRAS, COVER]}


def refusal(given: dict[str, str | list[str]]) -> str:
    with pytest.raises(ConnectorRequestError) as refused:
        fill_variant_attributes(AUDIOBOOK, given)
    return refused.value.message


def test_values_are_matched_by_name_or_slug_and_take_the_shops_spelling() -> None:
    filled = fill_variant_attributes(
        AUDIOBOOK, {"audiobook-format": "flac", "Length (h)": "7.5", "extras": ["pdf", "Poster"]}
    )
    assert [(f["name"], f["values"]) for f in filled] == [
        ("Audiobook format", ["FLAC"]),
        ("Length (h)", ["7.5"]),
        ("Extras", ["PDF", "Poster"]),
    ]
    assert missing_required(AUDIOBOOK, filled) == []
    assert [attribute_input(f) for f in filled] == [
        {"id": FORMAT["id"], "dropdown": {"value": "FLAC"}},
        {"id": LENGTH["id"], "numeric": "7.5"},
        {"id": EXTRAS["id"], "multiselect": [{"value": "PDF"}, {"value": "Poster"}]},
    ]


def test_each_problem_is_named_in_one_sentence() -> None:
    message = refusal({"Colour": "red", "Length (h)": "long", "Cover": "x.png"})
    assert message == (
        "product type 'Audiobook': 'Colour' is not a variant attribute of it (it has "
        "'Audiobook format', 'Length (h)', 'Extras', 'Cover'); long is not a value of "
        "'Length (h)' (NUMERIC); 'Cover' is a FILE attribute, which opshub can't fill; it "
        "requires a value for 'Audiobook format' (DROPDOWN: one of MP3, FLAC, CD). Give them "
        "in `attributes` as {attribute name: value}"
    )
    assert "one value, not 2" in refusal({"Audiobook format": ["MP3", "CD"]})
    assert "Vinyl is not a value of 'Audiobook format'" in refusal({"Audiobook format": "Vinyl"})


def test_a_type_without_required_attributes_needs_none() -> None:
    assert fill_variant_attributes({"name": "Simple", "variant_attributes": []}, {}) == []
    assert missing_required(AUDIOBOOK, []) == ["Audiobook format"]
