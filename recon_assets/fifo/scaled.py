"""Decimals as scaled int64 integers (``mantissa * 10**-places``) and back, in bulk.

FIFO over a million orders cannot afford a Python ``Decimal`` operation per value, and binary
floats are not exact, so the arithmetic runs on int64 mantissas. Each value keeps few places
(its own fewest, or at most as many as other values of its column need), which keeps the
integers (and the denominators built from them) small. When some value has no int64 form (more than 18 places, or too many digits), the whole
column holds Python ints in an object array instead: numpy still applies each operation to the
whole array in one C loop, only about thirty times slower, and never inexactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: The most places a value may have and still be held as an int64 mantissa.
MAX_PLACES = 18
#: 10**k for k in 0..MAX_PLACES, exact in int64.
POW10 = np.array([10 ** k for k in range(MAX_PLACES + 1)], dtype=np.int64)
_MANTISSA_LIMIT = 2 ** 62  # the same bound the vectorized split proves


@dataclass(frozen=True)
class Scaled:
    """Exact values ``mantissa * 10**-places``.

    ``mantissa`` is int64 when every value fits, else an object array of Python ints.
    """

    mantissa: np.ndarray
    places: np.ndarray  # int64

    def take(self, index: np.ndarray) -> Scaled:
        return Scaled(self.mantissa[index], self.places[index])


def spread(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """``values`` placed at ``index`` of an ``n``-row array (zeros elsewhere)."""
    out = np.zeros(n, dtype=values.dtype)
    out[index] = values
    return out


def as_int64(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values as int64 (0 where they do not fit below 2**62 in magnitude), and where."""
    if values.dtype == np.int64:
        return values, np.ones(len(values), dtype=bool)
    fits = ((values > -_MANTISSA_LIMIT) & (values < _MANTISSA_LIMIT)).astype(bool)
    return np.where(fits, values, 0).astype(np.int64), fits


def scale_decimals(values: Sequence[Decimal]) -> Scaled:
    """Split finite Decimals into int64 mantissas and few places, exactly.

    pyarrow reads the Decimals into 128-bit integers at 18 places (fast, exact, and it refuses
    anything it would have to round); the trailing zeros of each are then stripped with a
    float estimate whose remainder is checked in exact integer arithmetic. Should one value
    need more than 18 places, pyarrow reads the column at 38 and only the values that do not
    survive the trip to 18 places and back are split one by one in Python.
    """
    objects = np.asarray(values, dtype=object)
    try:
        scaled, slow = _scale_words(pa.array(objects, type=pa.decimal128(38, MAX_PLACES)))
        return _merge(scaled, slow, objects[slow])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        wide = pa.array(objects, type=pa.decimal256(76, 38))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _scale_slowly(objects)
    narrow = pc.cast(wide, pa.decimal128(38, MAX_PLACES), safe=False)
    kept = pc.equal(pc.cast(narrow, wide.type), wide).to_numpy(zero_copy_only=False)
    scaled, slow = _scale_words(narrow)
    slow = np.union1d(slow, np.flatnonzero(~kept))
    return _merge(scaled, slow, objects[slow])


def _merge(scaled: Scaled, slow: np.ndarray, slow_values: Sequence[Decimal]) -> Scaled:
    """Replace the rows ``slow`` by the exact one-by-one split of their values."""
    if not len(slow):
        return scaled
    rest = _scale_slowly(slow_values)
    mantissa = scaled.mantissa.astype(object)
    mantissa[slow] = rest.mantissa
    places = scaled.places.copy()
    places[slow] = rest.places
    return Scaled(mantissa, places)


def scale_arrow(array: pa.Array | pa.ChunkedArray) -> Scaled:
    """The same split for a pyarrow decimal column (nulls give 0), without Python objects."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    try:
        narrow = pc.fill_null(pc.cast(array, pa.decimal128(38, MAX_PLACES)), 0)
    except pa.ArrowInvalid:  # more than 18 places, or too many digits at 18
        return scale_decimals(np.array([v or 0 for v in array.to_pylist()], dtype=object))
    scaled, slow = _scale_words(narrow)
    return _merge(scaled, slow, narrow.take(pa.array(slow, type=pa.int64())).to_pylist())


def _scale_words(array: pa.Array) -> tuple[Scaled, np.ndarray]:
    """The split for values held as 128-bit integers at 18 places; and the rows it missed."""
    n = len(array)
    words = np.frombuffer(array.buffers()[1], dtype=np.int64, count=2 * (array.offset + n))
    low, high = words[2 * array.offset::2], words[2 * array.offset + 1::2]
    # |value| < 2**112 keeps every remainder below in int64; larger values use Python.
    tame = np.abs(high) < 2 ** 48
    approx = (high + (low < 0)).astype(float) * 2.0 ** 64 + low.astype(float)
    lowest_bit = (low & -low).view(np.uint64).astype(float)
    twos = np.where(low == 0, 64, np.frexp(lowest_bit)[1] - 1)
    cut = np.minimum(twos, MAX_PLACES)  # 10**cut divides the value only if 2**cut does
    # First try on every row at once, then on the few left, one place more each time.
    candidate = tame & (approx != 0)
    mantissa, fits, small = _divide(approx, low, cut)
    fits &= candidate
    cut = np.where(candidate & ~fits & small, cut - 1, cut)
    todo = np.flatnonzero(candidate & ~fits & small & (cut >= 0))
    if len(todo) and fits.any():
        # Most values of a column share their places: try the commonest next. A value with
        # fewer places may then keep a few zeros (never more places than others have).
        cut[todo] = np.minimum(cut[todo], np.bincount(cut[fits]).argmax())
    while len(todo):
        found, exact, small = _divide(approx[todo], low[todo], cut[todo])
        mantissa[todo[exact]] = found[exact]
        fits[todo[exact]] = True
        retry = ~exact & small & (cut[todo] > 0)
        cut[todo[retry]] -= 1
        todo = todo[retry]
    fits |= (low == 0) & (high == 0)
    places = np.where(fits, MAX_PLACES - cut, 0).astype(np.int64)
    return Scaled(mantissa, places), np.flatnonzero(~fits)


def _divide(approx: np.ndarray, low: np.ndarray, cut: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``value / 10**cut`` where that is exact: quotient, exactness, and "small enough".

    The float estimate may be a few units off; the remainder, computed in wrapping int64
    from the low word, is exact because its true value is small.
    """
    power = POW10[cut]
    guess = np.rint(approx / power)
    small = np.abs(guess) < 2.0 ** 62
    guess_int = np.where(small, guess, 0).astype(np.int64)
    with np.errstate(over="ignore"):
        remainder = low - guess_int * power
    correction = np.rint(remainder / power).astype(np.int64)
    exact = small & (remainder == correction * power)
    return guess_int + correction, exact, small


def _scale_slowly(values: Sequence[Decimal]) -> Scaled:
    """The same split, one value at a time, into Python ints of any size."""
    mantissa = np.empty(len(values), dtype=object)
    places = np.zeros(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        numerator, denominator = value.as_integer_ratio()
        places[i] = max((denominator & -denominator).bit_length() - 1, _fives(denominator))
        mantissa[i] = numerator * 10 ** int(places[i]) // denominator
    return Scaled(mantissa, places)


def _fives(number: int) -> int:
    count = 0
    while number % 5 == 0:
        number //= 5
        count += 1
    return count


def to_places(scaled: Scaled, places: np.ndarray) -> np.ndarray:
    """The mantissas rescaled to ``places`` (each at least its own): int64 if all fit, else ints."""
    shift = places - scaled.places
    if scaled.mantissa.dtype == np.int64 and shift.max(initial=0) <= MAX_PLACES:
        factor = POW10[shift]
        if (np.abs(scaled.mantissa.astype(float)) * factor < 2.0 ** 62).all():
            return scaled.mantissa * factor
    return scaled.mantissa.astype(object) * powers_of_ten(shift)


def powers_of_ten(exponent: np.ndarray) -> np.ndarray:
    """10**exponent as Python ints (any size)."""
    return np.array([10 ** k for k in range(int(exponent.max(initial=0)) + 1)],
                    dtype=object)[exponent]
