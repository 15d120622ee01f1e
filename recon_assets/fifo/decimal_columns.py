"""Exact integers back to a decimal column: pyarrow ``decimal128`` built from int64 words.

Creating a million ``Decimal`` objects would cost more than the whole allocation, so result
columns are assembled from the mantissas directly; ``.tolist()`` still gives ``Decimal``.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from recon_assets.fifo.scaled import MAX_PLACES, POW10, as_int64
from recon_assets.money import EXACT

_DECIMAL_DIGITS = 38


def mul_128(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact 128-bit products ``a * b`` (int64, ``0 <= b < 2**63``) as (low, high) words."""
    negative = a < 0
    ua = np.abs(a).view(np.uint64)
    ub = b.view(np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    a0, a1, b0, b1 = ua & mask, ua >> np.uint64(32), ub & mask, ub >> np.uint64(32)
    low_part = a0 * b0
    middle = a0 * b1 + a1 * b0  # < 2**64: each term is below 2**63
    low = low_part + (middle << np.uint64(32))
    high = a1 * b1 + (middle >> np.uint64(32)) + (low < low_part).astype(np.uint64)
    neg_low = ~low + np.uint64(1)
    neg_high = ~high + (neg_low == 0).astype(np.uint64)
    return (np.where(negative, neg_low, low).view(np.int64),
            np.where(negative, neg_high, high).view(np.int64))


def decimal_series(mantissa: np.ndarray, places: np.ndarray | int, valid: np.ndarray
                   ) -> pd.Series:
    """A ``decimal128(38, s)`` column (``s`` = the most places present), missing where not valid.

    Built straight from int64 words. Should a value not fit int64 or 18 places, the column is
    made from Decimals instead, and should it not fit 38 digits, it holds Decimal objects:
    slower, never rounded.
    """
    n = len(mantissa)
    places = np.broadcast_to(np.asarray(places, dtype=np.int64), (n,))
    scale = int(places[valid].max()) if valid.any() else 0
    small, fits = as_int64(mantissa)
    if scale > MAX_PLACES or not fits[valid].all():
        return _from_decimals(mantissa, places, valid, scale)
    small = np.where(valid, small, 0)
    factor = POW10[np.where(valid, scale - places, 0)]
    if (np.abs(small.astype(float)) * factor < 2.0 ** 62).all():
        low = small * factor  # the common case: no product needs a second word
        high = low >> 63
    else:
        low, high = mul_128(small, factor)
    array = pa.Array.from_buffers(pa.decimal128(_DECIMAL_DIGITS, scale), n, [
        pa.py_buffer(np.packbits(valid, bitorder="little")),
        pa.py_buffer(np.column_stack([low, high]))])
    return pd.Series(pd.arrays.ArrowExtensionArray(array))


def _from_decimals(mantissa: np.ndarray, places: np.ndarray, valid: np.ndarray,
                   scale: int) -> pd.Series:
    values = [Decimal(int(m)).scaleb(-int(k), context=EXACT) if ok else None
              for m, k, ok in zip(mantissa, places, valid)]
    try:
        return pd.Series(pd.arrays.ArrowExtensionArray(
            pa.array(values, type=pa.decimal128(_DECIMAL_DIGITS, scale))))
    except (pa.ArrowInvalid, ValueError):
        return pd.Series(values, dtype=object)
