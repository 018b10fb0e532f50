"""Money the canonical way: Decimal inside, a two-decimal string on the wire."""

from __future__ import annotations

from decimal import Decimal

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """Format an amount the canonical way: two decimals, as a string."""
    return str(value.quantize(CENT))
