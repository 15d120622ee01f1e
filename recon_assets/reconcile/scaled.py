"""Exact decimal columns as scaled integers, so sums, comparisons and divisions are vectorized.

A column of ``Decimal`` becomes :class:`Scaled`: a numpy object array of Python ints and one
scale (value = int * 10**-scale). Python ints never overflow, and numpy applies ``+ - * // %``
and comparisons to a whole object array in one C loop, so a million values cost tens of
milliseconds and there is no Python loop per row. Arrow converts the Decimals in C++ and its
128/256-bit storage *is* the unscaled integer, so no per-value parsing happens in Python either.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recon_assets.money import NotADecimal, to_decimal

#: Scale tried first: 18 places hold every Coinbase price, size and commission exactly, and a
#: declared Arrow type converts about six times faster than one Arrow has to infer.
FIRST_SCALE = 18
_WORD = 1 << 64


@dataclass(frozen=True)
class Scaled:
    """Exact values ``ints * 10**-scale``; ``ints`` is a numpy object array of Python ints."""

    ints: np.ndarray
    scale: int

    def at(self, scale: int) -> np.ndarray:
        """The same values as integers at a finer (or equal) scale."""
        if scale < self.scale:
            raise ValueError(f"cannot rescale {self.scale} places down to {scale} exactly")
        return self.ints if scale == self.scale else self.ints * 10 ** (scale - self.scale)


def to_scaled(values: Any) -> Scaled:
    """Exact scaled integers for a column of ``Decimal`` (or int) values, none missing.

    Other inputs (decimal strings, floats) are first converted one by one with
    :func:`recon_assets.money.to_decimal`: a slow path for API callers, never taken for
    normalized frames. A missing value raises :class:`recon_assets.money.NotADecimal`.
    """
    objects = np.asarray(values, dtype=object)
    if len(objects) == 0:
        return Scaled(np.empty(0, dtype=object), 0)
    try:
        arr = _arrow_decimals(objects)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        arr = _arrow_decimals(np.array([to_decimal(v) for v in objects], dtype=object))
    if arr.null_count:
        raise NotADecimal("missing value")
    ints = _unscaled(arr)
    if arr.type.scale < 0:
        return Scaled(ints * 10 ** (-arr.type.scale), 0)
    return Scaled(ints, arr.type.scale)


def scalar_scaled(value: Decimal) -> tuple[int, int]:
    """One exact decimal as ``(int, scale)``, e.g. a tolerance."""
    one = to_scaled([value])
    return one.ints[0], one.scale


def _arrow_decimals(objects: np.ndarray) -> pa.Array:
    try:
        return pa.array(objects, type=pa.decimal128(38, FIRST_SCALE))
    except pa.ArrowInvalid:  # more places or digits than the declared type: let Arrow size it
        arr = pa.array(objects)
    if not pa.types.is_decimal(arr.type):
        raise pa.ArrowTypeError(f"not decimals: {arr.type}")
    return arr


def _unscaled(arr: pa.Array) -> np.ndarray:
    """The two's-complement integers Arrow stores for a decimal128/decimal256 array."""
    width = arr.type.byte_width // 8
    words = np.frombuffer(arr.buffers()[1], dtype="<u8",
                          count=(arr.offset + len(arr)) * width).reshape(-1, width)[arr.offset:]
    low = np.ascontiguousarray(words[:, 0]).view(np.int64)
    extension = np.where(low < 0, np.uint64(_WORD - 1), np.uint64(0))
    if all((words[:, k] == extension).all() for k in range(1, width)):
        return low.astype(object)  # the common case: every value fits in 64 bits
    value = np.ascontiguousarray(words[:, width - 1]).view(np.int64).astype(object)
    for k in range(width - 2, -1, -1):
        value = (value << 64) + words[:, k].astype(object)
    return value


def div_half_even(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` rounded half-even to an integer (denominators positive)."""
    quotient = numerator // denominator
    twice_remainder = 2 * (numerator - quotient * denominator)
    up = (twice_remainder > denominator) | ((twice_remainder == denominator) & (quotient % 2 == 1))
    return np.where(up, quotient + 1, quotient)


def group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """Where each run of equal group codes starts in an array sorted by code."""
    if len(sorted_codes) == 0:
        return np.empty(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])


def group_sums(ints: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Exact per-group sums of integers already sorted by group (see :func:`group_starts`)."""
    if len(starts) == 0:
        return np.empty(0, dtype=object)
    return np.add.reduceat(ints, starts)


def to_decimals(ints: np.ndarray, scale: int) -> pd.Series:
    """``Decimal`` objects for scaled integers, without trailing zeros after the point.

    ``1500`` at scale 3 gives ``Decimal("1.5")``, not ``Decimal("1.500")``: aggregated values
    are computed at a common (wide) scale, but ledgers and reports should show them plainly.
    Values with equal remaining places are converted together through Arrow.
    """
    stripped = np.asarray(ints, dtype=object).copy()
    places = np.full(len(stripped), scale, dtype=np.int64)
    active = np.flatnonzero(places > 0)
    while len(active):
        values = stripped[active]
        divisible = values % 10 == 0
        active = active[divisible]
        stripped[active] = values[divisible] // 10
        places[active] -= 1
        active = active[places[active] > 0]
    out = np.empty(len(stripped), dtype=object)
    for p in np.unique(places):
        chosen = places == p
        out[chosen] = _arrow_from_ints(stripped[chosen], int(p)).to_pandas().to_numpy()
    return pd.Series(out, dtype=object)


def _arrow_from_ints(ints: np.ndarray, scale: int) -> pa.Array:
    """A decimal Arrow array whose storage is ``ints`` (the inverse of :func:`_unscaled`)."""
    biggest = max(abs(int(ints.max())), abs(int(ints.min())))
    width, dtype = (2, pa.decimal128(38, scale)) if biggest < 10 ** 38 else \
        (4, pa.decimal256(76, scale))
    words = np.empty((len(ints), width), dtype="<u8")
    for k in range(width):
        words[:, k] = ((ints >> (64 * k)) & (_WORD - 1)).astype(np.uint64)
    return pa.Array.from_buffers(dtype, len(ints), [None, pa.py_buffer(words.tobytes())])
