"""Exact decimals as scaled integers (``mantissa * 10**-places``) and back, in bulk.

The one representation of exact decimal columns for every domain: FIFO over a million orders
cannot afford a Python ``Decimal`` operation per value, binary floats are not exact, and
reconciliation sums and compares whole columns. :class:`Scaled` holds int64 mantissas, each
value with few places (its own fewest, or at most as many as other values of its column need),
which keeps the integers (and the denominators built from them) small. When some value has no
int64 form (more than 18 places, or too many digits), the whole column holds Python ints in an
object array instead: numpy still applies each operation to the whole array in one C loop, only
about thirty times slower, and never inexactly. Sums and products of whole columns, whose
results outgrow int64, read the values at one common scale as Python ints
(:meth:`Scaled.ints_at`).

In: :func:`scale_values` (any numbers), :func:`scale_decimals` (Decimals),
:func:`try_scale_decimals` (Decimals, fast paths only, places possibly common to the column),
:func:`read_text_at` (decimal strings, at a sample's places, without a Decimal per value),
:func:`scale_arrow`.
Out: :func:`decimal_array`, which builds an Arrow decimal column from the integers' words, and
its two forms :func:`decimal_series` (an Arrow-backed column) and :func:`to_decimals`
(``Decimal`` objects without trailing zeros); :func:`decimal_of` for one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recon_assets.money import EXACT, NotADecimal, to_decimal

#: The most places a value may have and still be held as an int64 mantissa.
MAX_PLACES = 18
#: 10**k for k in 0..MAX_PLACES, exact in int64.
POW10 = np.array([10 ** k for k in range(MAX_PLACES + 1)], dtype=np.int64)
_MANTISSA_LIMIT = 2 ** 62  # the same bound the vectorized split proves
_DECIMAL_DIGITS = 38
_INT64_DIGITS = 18  # any integer of this many digits fits int64
_SAMPLE = 1024  # values whose places :func:`try_scale_decimals` tries for a whole column
_WORD = 1 << 64


class BeyondArrow(ValueError):
    """Values that need more digits or places than an Arrow decimal column can hold (38 for
    ``decimal128``, 76 for ``decimal256``): callers keep them as ``Decimal`` objects."""


@dataclass(frozen=True)
class Scaled:
    """Exact values ``mantissa * 10**-places``.

    ``mantissa`` is int64 when every value fits, else an object array of Python ints.
    """

    mantissa: np.ndarray
    places: np.ndarray  # int64

    def take(self, index: np.ndarray) -> Scaled:
        return Scaled(self.mantissa[index], self.places[index])

    @property
    def most_places(self) -> int:
        return int(self.places.max(initial=0))

    def ints_at(self, places: int) -> np.ndarray:
        """The values as Python ints at ``places`` (at least :attr:`most_places`)."""
        return to_places(self, places).astype(object)


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


def scale_values(values: Any, missing: Decimal | None = None) -> Scaled:
    """:func:`scale_decimals` for a column of any numbers: Decimals, ints, decimal strings, floats.

    Anything but Decimals is first converted one by one with :func:`recon_assets.money.to_decimal`
    (a slow path for API callers, never taken for normalized frames). A missing value reads as
    ``missing``, or raises :class:`recon_assets.money.NotADecimal` when that is None.
    """
    objects = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(objects, skipna=False) != "decimal":
        objects = np.array([to_decimal(v) for v in objects], dtype=object)
        gaps = np.equal(objects, None)
        if gaps.any():
            if missing is None:
                raise NotADecimal("missing value")
            objects[gaps] = missing
    return scale_decimals(objects)


def scale_decimals(values: Sequence[Decimal]) -> Scaled:
    """Split finite Decimals into int64 mantissas and few places, exactly.

    pyarrow reads the Decimals into 128-bit integers at 18 places (fast, exact, and it refuses
    anything it would have to round); the trailing zeros of each are then stripped with a
    float estimate whose remainder is checked in exact integer arithmetic. Should one value
    need more than 18 places, pyarrow reads the column at 38 and only the values that do not
    survive the trip to 18 places and back are split one by one in Python.
    """
    objects = np.asarray(values, dtype=object)
    quick = _try_words(objects)
    if quick is not None:
        return quick
    try:
        wide = pa.array(objects, type=pa.decimal256(76, 38))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _scale_slowly(objects)
    narrow = pc.cast(wide, pa.decimal128(38, MAX_PLACES), safe=False)
    kept = pc.equal(pc.cast(narrow, wide.type), wide).to_numpy(zero_copy_only=False)
    scaled, slow = _scale_words(narrow)
    slow = np.union1d(np.union1d(slow, np.flatnonzero(~kept)),
                      _vanished(objects, scaled.mantissa == 0))
    return _merge(scaled, slow, objects[slow])


def try_scale_decimals(values: Sequence[Decimal]) -> Scaled | None:
    """The values split as :func:`scale_decimals` does, when pyarrow reads every value at 18
    places, else None; the places may be one number common to the whole column.

    None means some value is not finite, has more than 18 places or too many digits; any
    Scaled returned holds finite values only. Columns whose values all fit 18 digits at the
    most places a sample of them has (prices, sizes and fees nearly always) are read by
    pyarrow straight at those places: the integers pyarrow makes are then the mantissas, and
    no value is split after it is read.
    """
    objects = np.asarray(values, dtype=object)
    common = _try_common_places(objects)
    return common if common is not None else _try_words(objects)


def _try_common_places(objects: np.ndarray) -> Scaled | None:
    """Every value at the most places of an evenly spread sample, if that holds them all.

    pyarrow refuses a value that would need rounding or more than 18 digits at those places,
    which sends the column to the value-by-value split; a sample keeps that rare.
    """
    places = sample_places(objects[sample_rows(len(objects))])
    if places is None:
        return None
    try:
        array = pa.array(objects, type=pa.decimal128(_INT64_DIGITS, places))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    scaled = _at_common_places(array, places)
    return None if len(_vanished(objects, scaled.mantissa == 0)) else scaled


def sample_rows(n: int) -> np.ndarray:
    """The rows of an ``n``-row column whose places :func:`try_scale_decimals` looks at."""
    return np.linspace(0, n - 1, min(n, _SAMPLE)).astype(int) if n else np.zeros(0, dtype=int)


def sample_places(sample: Sequence[Decimal]) -> int | None:
    """The most places of the (finite) Decimals ``sample``, trailing zeros aside; None when
    there are none, one is not a finite Decimal, or it has more than 18 places."""
    if not len(sample):
        return None
    try:
        places = max(0, *(-v.normalize(EXACT).as_tuple().exponent for v in sample))
    except (AttributeError, TypeError, ArithmeticError):  # not a Decimal, or not finite
        return None
    return places if places <= MAX_PLACES else None


def read_text_at(text: pa.Array, places: int) -> tuple[Scaled, pa.Array] | None:
    """Decimal strings (no nulls) read by pyarrow straight at ``places``, as
    :func:`try_scale_decimals` reads the Decimals of the same strings at a sample's places;
    and the ``decimal128(18, places)`` column pyarrow read them into.

    None when pyarrow refuses some value (not its decimal syntax, more places or more than 18
    digits at ``places``); every string it reads is one ``Decimal`` reads with the same value.
    Rows read as 0 are for the caller to confirm (:func:`try_scale_decimals` checks them).
    """
    try:
        array = pc.cast(text, pa.decimal128(_INT64_DIGITS, places))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _at_common_places(array, places), array


def _at_common_places(array: pa.Array, places: int) -> Scaled:
    """The int64 mantissas of a ``decimal128(18, places)`` column without nulls."""
    n = len(array)
    words = np.frombuffer(array.buffers()[1], dtype=np.int64, count=2 * (array.offset + n))
    return Scaled(words[2 * array.offset::2].copy(), np.full(n, places, dtype=np.int64))


def _vanished(objects: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """Rows pyarrow read as 0 whose value is not 0.

    pyarrow reads a value with more than about 38 places more than the column's scale (such
    as ``1E-57``) as 0 without a word, where it refuses other values it would round; only
    the rows read as 0 (few: sizes and prices never are) are looked at one by one.
    """
    rows = np.flatnonzero(zero)
    return rows[[not v.is_zero() for v in objects[rows]]] if len(rows) else rows


def _try_words(objects: np.ndarray) -> Scaled | None:
    """The value-by-value split of a column pyarrow reads at 18 places, else None."""
    try:
        scaled, slow = _scale_words(pa.array(objects, type=pa.decimal128(38, MAX_PLACES)))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    slow = np.union1d(slow, _vanished(objects, scaled.mantissa == 0))
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
    biggest = pc.max(pc.abs(array)).as_py() if len(array) else None
    if biggest is not None and biggest >= 10 ** (_DECIMAL_DIGITS - MAX_PLACES):
        # pyarrow's cast to 18 places wraps such values around instead of refusing them.
        return scale_decimals(_decimals_of(array))
    try:
        narrow = pc.fill_null(pc.cast(array, pa.decimal128(38, MAX_PLACES)), 0)
    except pa.ArrowInvalid:  # more than 18 places, or too many digits at 18
        return scale_decimals(_decimals_of(array))
    scaled, slow = _scale_words(narrow)
    return _merge(scaled, slow, narrow.take(pa.array(slow, type=pa.int64())).to_pylist())


def _decimals_of(array: pa.Array) -> np.ndarray:
    """An Arrow decimal column as Decimal objects, nulls as 0."""
    return np.array([Decimal(0) if v is None else v for v in array.to_pylist()], dtype=object)


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
        if not value.is_finite():
            raise NotADecimal("missing value" if value.is_nan() else f"not finite: {value}")
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


def round_half_even(floor: np.ndarray, remainder: np.ndarray, denominator: np.ndarray
                    ) -> np.ndarray:
    """``floor + remainder / denominator`` (``0 <= remainder < denominator``) rounded half-even.

    The remainder is compared with what is left of the denominator, not doubled: ``2 * r``
    would wrap in int64 for denominators past 2**62.
    """
    rest = denominator - remainder
    up = (remainder > rest) | ((remainder == rest) & (floor % 2 == 1))
    return floor + up.astype(bool)


def div_half_even(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` rounded half-even to an integer (denominators positive)."""
    quotient = numerator // denominator
    return round_half_even(quotient, numerator - quotient * denominator, denominator)


def group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """Where each run of equal group codes starts in an array sorted by code."""
    if len(sorted_codes) == 0:
        return np.empty(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])


def group_sums(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """Exact sums of ``values`` per code in ``0..groups-1`` (code -1: left out)."""
    keep = codes >= 0
    codes, values = codes[keep], values[keep]
    if values.dtype == np.int64 and np.abs(values.astype(float)).sum() >= 2.0 ** 62:
        values = values.astype(object)
    sums = np.zeros(groups, dtype=values.dtype)
    if len(codes):
        order = np.argsort(codes)
        starts = group_starts(codes[order])
        sums[codes[order][starts]] = np.add.reduceat(values[order], starts)
    return sums


def decimal_of(units: object, places: int) -> Decimal:
    """One integer at ``places`` as an exact Decimal, however many digits it has.

    Built from its text, which no context rounds (``scaleb`` would round to 60 digits).
    """
    return Decimal(f"{int(units)}E-{int(places)}")


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


def decimal_array(mantissa: np.ndarray, places: np.ndarray | int,
                  valid: np.ndarray | None = None) -> pa.Array:
    """``mantissa * 10**-places`` as an Arrow decimal column, missing where not ``valid``.

    Its scale is the most places of a valid value; it is ``decimal128(38, s)``, or
    ``decimal256(76, s)`` should a value need more than 38 digits (or places); beyond 76
    it raises :class:`BeyondArrow` rather than cut words off. Built straight from the
    integers' two's-complement words, no Decimal objects: int64 mantissas (the common case)
    become two words each in a few vectorized steps, Python ints are split with shifts.
    """
    n = len(mantissa)
    given = np.asarray(places, dtype=np.int64)
    places = np.broadcast_to(given, (n,))
    every = valid is None or bool(np.all(valid))
    valid = np.ones(n, dtype=bool) if valid is None else valid
    if given.ndim == 0:  # one scale for the whole column: nothing to shift
        scale, shift = int(given), np.broadcast_to(np.int64(0), (n,))
    else:
        scale = int(places[valid].max()) if valid.any() else 0
        shift = np.where(valid, scale - places, 0)
    small, fits = as_int64(mantissa)
    if scale <= MAX_PLACES and fits[valid].all():
        small = small if every else np.where(valid, small, 0)
        words = np.empty((n, 2), dtype=np.int64)
        if not shift.any():  # the commonest case: every value at the column's scale
            words[:, 0] = small
            np.right_shift(small, 63, out=words[:, 1])
        else:
            factor = POW10[shift]
            if (np.abs(small.astype(float)) * factor < 2.0 ** 62).all():
                np.multiply(small, factor, out=words[:, 0])  # no product needs two words
                np.right_shift(words[:, 0], 63, out=words[:, 1])
            else:
                words[:, 0], words[:, 1] = mul_128(small, factor)
    else:
        ints = np.where(valid, mantissa, 0).astype(object) * powers_of_ten(shift)
        biggest = max(abs(int(ints.max())), abs(int(ints.min()))) if n else 0
        width = next((w for w in (2, 4) if scale <= w * _DECIMAL_DIGITS // 2
                      and biggest < 10 ** (w * _DECIMAL_DIGITS // 2)), None)
        if width is None:  # more words would be cut off: the value would wrap
            raise BeyondArrow(f"{len(str(biggest))} digits at {scale} places")
        words = np.empty((n, width), dtype="<u8")
        for k in range(words.shape[1]):
            words[:, k] = ((ints >> (64 * k)) & (_WORD - 1)).astype(np.uint64)
    dtype = pa.decimal128(_DECIMAL_DIGITS, scale) if words.shape[1] == 2 else \
        pa.decimal256(2 * _DECIMAL_DIGITS, scale)
    bitmap = None if every else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(dtype, n, [bitmap, pa.py_buffer(words)])


def decimal_series(mantissa: np.ndarray, places: np.ndarray | int, valid: np.ndarray
                   ) -> pd.Series:
    """The :func:`decimal_array` column as a pandas Series (``.tolist()`` gives Decimals).

    Creating a million ``Decimal`` objects would cost more than the whole FIFO allocation, so
    result columns are this. Should a value not fit 38 digits, the Series holds Decimal
    objects instead (``None`` where not valid): slower, never rounded.
    """
    try:
        array = decimal_array(mantissa, places, valid)
    except BeyondArrow:
        array = None
    if array is not None and pa.types.is_decimal128(array.type):
        return pd.Series(pd.arrays.ArrowExtensionArray(array))
    places = np.broadcast_to(np.asarray(places, dtype=np.int64), (len(mantissa),))
    return pd.Series([decimal_of(m, k) if ok else None
                      for m, k, ok in zip(mantissa, places, valid)], dtype=object)


def to_decimals(ints: np.ndarray, scale: int) -> pd.Series:
    """``Decimal`` objects for integers at ``scale``, without trailing zeros after the point.

    ``1500`` at scale 3 gives ``Decimal("1.5")``, not ``Decimal("1.500")``: aggregated values
    are computed at a common (wide) scale, but ledgers and reports should show them plainly.
    Values with equal remaining places are converted together through :func:`decimal_array`.
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
        try:
            out[chosen] = decimal_array(stripped[chosen], int(p)).to_pandas().to_numpy()
        except BeyondArrow:
            out[chosen] = [decimal_of(units, p) for units in stripped[chosen]]
    return pd.Series(out, dtype=object)
