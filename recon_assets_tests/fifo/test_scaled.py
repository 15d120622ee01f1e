"""Decimals to scaled integers and back: exact for every size of value, fast path or not."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from recon_assets.money import EXACT
from recon_assets.scaled import (decimal_of, decimal_series, div_half_even, mul_128,
                                 round_half_even, scale_decimals, to_decimals,
                                 scale_arrow, try_scale_decimals)

_DECIMALS = st.builds(lambda digits, exponent, sign: Decimal((sign, digits, exponent)),
                      st.lists(st.integers(0, 9), min_size=1, max_size=40).map(tuple),
                      st.integers(-30, 6), st.integers(0, 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(_DECIMALS, min_size=1, max_size=30))
def test_scale_decimals_is_exact(values: list[Decimal]) -> None:
    scaled = scale_decimals(np.array(values, dtype=object))
    for value, mantissa, places in zip(values, scaled.mantissa, scaled.places):
        assert places >= 0
        assert Decimal(int(mantissa)).scaleb(-int(places), context=EXACT) == value
    fewest = [max(-v.normalize(EXACT).as_tuple().exponent, 0) for v in values]
    assert scaled.places.max() == max(fewest)  # no column gains places it does not need


def test_common_values_stay_int64_with_their_own_places() -> None:
    scaled = scale_decimals(np.array([Decimal("268.1"), Decimal("0.00000001"), Decimal("-7.250"),
                                      Decimal(0), Decimal("1E+3")], dtype=object))
    assert scaled.mantissa.dtype == np.int64
    assert scaled.mantissa.tolist() == [2681, 1, -725, 0, 1000]
    assert scaled.places.tolist() == [1, 8, 2, 0, 0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2 ** 62 + 1, 2 ** 62 - 1), st.integers(0, 18),
                          st.booleans()), min_size=1, max_size=20))
def test_decimal_series_round_trips(rows: list[tuple[int, int, bool]]) -> None:
    mantissa = np.array([r[0] for r in rows], dtype=np.int64)
    places = np.array([r[1] for r in rows], dtype=np.int64)
    valid = np.array([r[2] for r in rows], dtype=bool)
    got = decimal_series(mantissa, places, valid).tolist()
    for (m, k, ok), value in zip(rows, got):
        assert value == Decimal(m).scaleb(-k, context=EXACT) if ok else value is pd.NA


def test_decimal_series_takes_python_ints_too() -> None:
    mantissa = np.array([10 ** 30 + 1, 5, -3], dtype=object)
    got = decimal_series(mantissa, np.array([2, 40, 0]), np.array([True, True, False])).tolist()
    assert got[:2] == [Decimal(10 ** 30 + 1).scaleb(-2, context=EXACT), Decimal("5E-40")]
    assert got[2] is None or got[2] is pd.NA


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2 ** 63 + 1, 2 ** 63 - 1), st.integers(0, 2 ** 63 - 1)),
                min_size=1, max_size=20))
def test_mul_128_is_the_exact_product(pairs: list[tuple[int, int]]) -> None:
    low, high = mul_128(np.array([p[0] for p in pairs], dtype=np.int64),
                        np.array([p[1] for p in pairs], dtype=np.int64))
    for (a, b), lo, hi in zip(pairs, low.tolist(), high.tolist()):
        assert hi * 2 ** 64 + (lo % 2 ** 64) == a * b


_HUGE = st.builds(lambda digits, exponent, sign: Decimal((sign, digits, exponent)),
                  st.lists(st.integers(0, 9), min_size=1, max_size=90).map(tuple),
                  st.integers(-90, 400), st.integers(0, 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(_HUGE, min_size=1, max_size=12))
def test_back_to_decimals_is_exact_for_any_size_and_places(values: list[Decimal]) -> None:
    """No word is cut off (values past 2**255) and no scale past what Arrow holds is forced
    on it: every way back from integers gives the exact value, never a wrapped one."""
    scaled = scale_decimals(np.array(values, dtype=object))
    places = scaled.most_places
    ints = scaled.ints_at(places)
    assert to_decimals(ints, places).tolist() == values
    valid = np.ones(len(values), dtype=bool)
    assert decimal_series(scaled.mantissa, scaled.places, valid).tolist() == values
    assert [decimal_of(m, k) for m, k in zip(scaled.mantissa, scaled.places)] == values


def test_values_past_38_places_are_not_read_as_zero() -> None:
    """pyarrow reads ``1E-57`` as 0 at 18 places, without an error: the split must not."""
    for values in ([Decimal("1E-57")], [Decimal("2.5"), Decimal("1E-57"), Decimal(0)],
                   [Decimal("1E-57"), Decimal(0), Decimal("2.5"), Decimal("-3E-80")]):
        for split in (scale_decimals, try_scale_decimals):
            scaled = split(np.array(values, dtype=object))
            if scaled is None:  # try_scale_decimals may leave them to the slow split
                continue
            assert [decimal_of(m, k) for m, k in zip(scaled.mantissa, scaled.places)] == values


def test_arrow_columns_with_many_digits_are_not_wrapped() -> None:
    """pyarrow's cast of ``decimal128(38, 0)`` to 18 places wraps a 30-digit value around."""
    values = [Decimal("123456789012345678901234567890"), None, Decimal("-7")]
    scaled = scale_arrow(pa.array(values, type=pa.decimal128(38, 0)))
    got = [decimal_of(m, k) for m, k in zip(scaled.mantissa, scaled.places)]
    assert got == [values[0], Decimal(0), values[2]]


def test_decimal_of_keeps_every_digit_of_a_long_integer() -> None:
    units = 10 ** 70 + 1
    assert decimal_of(units, 8) == Decimal(f"{units}E-8")
    assert decimal_of(units, 8).as_tuple().digits[-1] == 1


def test_half_even_rounding_does_not_wrap_near_the_int64_limit() -> None:
    big = np.array([2 ** 63 - 1], dtype=np.int64)
    rem = np.array([2 ** 62 + 1], dtype=np.int64)  # more than half of big: rounds up
    assert round_half_even(np.array([4], dtype=np.int64), rem, big).tolist() == [5]
    assert div_half_even(np.array([2 ** 63 - 1], dtype=np.int64),
                         np.array([2 ** 62], dtype=np.int64)).tolist() == [2]
