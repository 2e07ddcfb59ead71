"""What a million tokens cost, per model, in USD. Maintained by hand; settings can override it.

Prices as published by the providers (checked 2026-11). A model missing here is priced at zero
and logged, so usage is never lost for want of a price.
"""

from __future__ import annotations

from opshub.config import ModelPrice

PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input=2.50, output=10.00, cached_input=1.25),
    "gpt-4o-mini": ModelPrice(input=0.15, output=0.60, cached_input=0.075),
    "gpt-4.1": ModelPrice(input=2.00, output=8.00, cached_input=0.50),
    "gpt-4.1-mini": ModelPrice(input=0.40, output=1.60, cached_input=0.10),
    "gpt-4.1-nano": ModelPrice(input=0.10, output=0.40, cached_input=0.025),
    "gpt-5": ModelPrice(input=1.25, output=10.00, cached_input=0.125),
    "gpt-5-mini": ModelPrice(input=0.25, output=2.00, cached_input=0.025),
    "text-embedding-3-small": ModelPrice(input=0.02, output=0.0, cached_input=0.02),
    "claude-opus-4-1": ModelPrice(input=15.00, output=75.00, cached_input=1.50),
    "claude-sonnet-4-5": ModelPrice(input=3.00, output=15.00, cached_input=0.30),
    "claude-haiku-4-5": ModelPrice(input=1.00, output=5.00, cached_input=0.10),
}


def price_for(model: str, overrides: dict[str, ModelPrice]) -> ModelPrice | None:
    """Exact name first, then the longest known prefix (dated snapshots: gpt-4o-2024-08-06)."""
    table = {**PRICES, **overrides}
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def model_family(model: str) -> str:
    """A priced model's family name, else ``other``: the metrics' model label, which tenants'
    own model names on their own servers would make unbounded."""
    matches = [name for name in PRICES if model.startswith(name)]
    return max(matches, key=len) if matches else "other"
