"""Exact decimal conversion and rounding shared by every domain.

Money and sizes are ``decimal.Decimal`` throughout. Values read from float columns go through
their shortest round-tripping representation (``repr``), so a stored ``0.1`` comes back as
``Decimal("0.1")`` rather than the binary expansion ``0.1000000000000000055511151231257827``.
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal
from typing import Any

import pandas as pd

#: Remainders at or below this size are dust, not an unmatched sell (SPEC section 3).
DUST = Decimal("1e-8")
#: Stored money values are rounded half-even to this many places, only at the end.
MONEY_PLACES = Decimal("1e-8")

#: A context wide enough that sums and products of ledger values are exact.
EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN,
                        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])


#: No price, size, fee or commission a Coinbase account records comes near a quadrillion; a
#: value this large is corrupt input (e.g. ``1e400``), and would outgrow exact integer forms.
MAX_MAGNITUDE = Decimal(10) ** 15
#: Nor has any such value more decimal places than this (the shortest form of a double has
#: at most 17 significant digits, so even a tiny float-stored size stays well under it).
MAX_PLACES = 30


class NotADecimal(ValueError):
    """The value cannot be read as a finite decimal number."""


def implausible(value: Decimal) -> str | None:
    """Why a finite decimal cannot be a real money or size value, or None when it can be.

    Shared by every reader of outside values (ledger rows, exchange fills, backfill requests)
    so that a value is refused the same way, with the same words, wherever it enters.
    """
    if abs(value) >= MAX_MAGNITUDE:
        return f"out of range: {value} (magnitude must stay below 1e15)"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PLACES and value != 0:
        return f"out of range: {value} (more than {MAX_PLACES} decimal places)"
    return None


def to_decimal(value: Any) -> Decimal | None:
    """Read a number from a database, a JSON payload or a DataFrame as an exact Decimal.

    ``None`` and NaN-like missing values give ``None``; floats go through ``repr`` (shortest
    round trip); strings must be plain finite decimals. Anything else raises ``NotADecimal``.
    """
    if value is None:
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            if value.is_nan():
                return None
            raise NotADecimal(f"not finite: {value}")
        return value
    if isinstance(value, bool):
        raise NotADecimal(f"not a number: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # numpy float64 too: float.__repr__ is its shortest form
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise NotADecimal(f"not finite: {value!r}")
        return Decimal(float.__repr__(value))
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        try:
            result = Decimal(text)
        except decimal.InvalidOperation:
            raise NotADecimal(f"not a number: {value!r}") from None
        if not result.is_finite():
            raise NotADecimal(f"not finite: {value!r}")
        return result
    if value is pd.NA:
        return None
    # numpy scalars
    if hasattr(value, "item"):
        return to_decimal(value.item())
    raise NotADecimal(f"not a number: {value!r}")


def round_money(value: Decimal | None) -> Decimal | None:
    """Round a money value half-even to 8 places (the only rounding SPEC section 3 allows)."""
    if value is None:
        return None
    return value.quantize(MONEY_PLACES, rounding=decimal.ROUND_HALF_EVEN, context=EXACT)


def decimal_str(value: Decimal | None) -> str | None:
    """A plain (non-scientific) string for JSON output: ``Decimal('1E-8')`` -> ``'0.00000001'``."""
    if value is None:
        return None
    return format(value, "f")
