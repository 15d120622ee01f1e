"""Exact money for many FIFO pieces at once: ``qty * (price +/- fee / size)``, rounded once.

Every amount SPEC section 3 asks for has that shape (cost: buy price plus buy fee per unit;
net proceeds: sell price minus sell fee per unit; proceeds: no fee; fee per unit: no price and
a quantity of one). In units of 1e-8 it is the fraction ``N / D`` with

    N = qty * (price * size * 10**(e - x) + sign * fee * 10**(e - y)),   D = 10**e * size,

all integers (``x``, ``y`` say how far price and fee reach beyond 8 places, ``e`` is the
largest of them and 0). ``N`` overflows int64, but int64 arithmetic is exact modulo 2**64, and
a float estimate pins the quotient to within a unit or two, so ``N - q * D`` is small and
exact: that gives the floor and the remainder, which is all half-even rounding needs. Rows
outside those proven bounds are computed with Python ints (object arrays), exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon_assets.scaled import (MAX_PLACES, POW10, Scaled, as_int64, powers_of_ten,
                                 round_half_even)

_PLACES = 8  # money is stored with 8 places
_ABSENT = -99  # "x" or "y" of a missing price or fee: never the largest
#: 10**k modulo 2**64 as int64, for the exponents ``e - x`` and ``e - y`` (up to 26).
_POW10_WRAPPED = np.array([((10 ** k + 2 ** 63) % 2 ** 64) - 2 ** 63 for k in range(27)],
                          dtype=np.int64)
_SPAN = 120  # 10.0**k for |k| <= _SPAN by lookup: a gather is far cheaper than a power
_POW10_FLOAT = 10.0 ** np.arange(-_SPAN, _SPAN + 1)
#: Rows per pass of :func:`amount`: half a MiB per temporary int64 array.
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Exact:
    """``floor + remainder / denominator`` per row, in units of 1e-8.

    Arrays are int64, or object arrays of Python ints when some row needed them.
    """

    floor: np.ndarray
    remainder: np.ndarray
    denominator: np.ndarray

    def take(self, index: np.ndarray) -> Exact:
        return Exact(self.floor[index], self.remainder[index], self.denominator[index])

    def rounded(self) -> np.ndarray:
        """Half-even rounding to whole units of 1e-8."""
        return round_half_even(self.floor, self.remainder, self.denominator)


def amount(qty: np.ndarray, size_places: np.ndarray, price: Scaled | None, fee: Scaled | None,
           size: np.ndarray, fee_sign: int) -> Exact:
    """``qty * (price + fee_sign * fee / size)`` in 1e-8 units, exactly.

    ``qty`` and ``size`` are integers at ``size_places``; at least one of price and fee is
    given. Rows the int64 path cannot prove are recomputed with Python ints. Rows are
    independent: they are computed :data:`_CHUNK` at a time, so the dozen temporary arrays
    of a pass stay small instead of each the size of the whole column.
    """
    if len(qty) <= _CHUNK:
        return _amount(qty, size_places, price, fee, size, fee_sign)
    parts = [_amount(qty[rows], size_places[rows], price and price.take(rows),
                     fee and fee.take(rows), size[rows], fee_sign)
             for rows in _chunks(len(qty))]
    return Exact(*(np.concatenate(column) for column in zip(
        *((p.floor, p.remainder, p.denominator) for p in parts))))


def _chunks(n: int) -> list[slice]:
    return [slice(start, start + _CHUNK) for start in range(0, n, _CHUNK)]


def _amount(qty: np.ndarray, size_places: np.ndarray, price: Scaled | None,
            fee: Scaled | None, size: np.ndarray, fee_sign: int) -> Exact:
    """:func:`amount` of rows few enough for one pass."""
    x = price.places + size_places - _PLACES if price else np.full(len(qty), _ABSENT)
    y = fee.places - _PLACES if fee else np.full(len(qty), _ABSENT)
    e = np.maximum(np.maximum(x, y), 0)
    exact = _amount_int64(qty, x, y, e, price, fee, size, fee_sign)
    slow = np.flatnonzero(~exact[3])
    if not len(slow):
        return Exact(*exact[:3])
    rows = _amount_ints(qty[slow], x[slow], y[slow], e[slow],
                        price and price.take(slow),
                        fee and fee.take(slow),
                        size[slow], fee_sign)
    merged = []
    for fast, exact_rows in zip(exact[:3], rows):
        column = fast.astype(object)
        column[slow] = exact_rows
        merged.append(column)
    return Exact(*merged)


def fee_per_unit(fee: Scaled, size: np.ndarray, size_places: np.ndarray) -> Exact:
    """``fee / size`` in 1e-8 units: the fee part of the amount of one unit."""
    one_unit = (POW10[size_places] if size_places.max(initial=0) <= MAX_PLACES
                else powers_of_ten(size_places))
    return amount(one_unit, size_places, None, fee, size, 1)


def _amount_int64(qty: np.ndarray, x: np.ndarray, y: np.ndarray, e: np.ndarray,
                  price: Scaled | None, fee: Scaled | None, size: np.ndarray, fee_sign: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Floor, remainder, denominator and ``ok``: the rows proven exact in int64."""
    qty, ok = as_int64(qty)
    size, size_ok = as_int64(size)
    ok &= size_ok & (e <= MAX_PLACES)
    # An absent price or fee adds nothing: its terms are the scalar 0 and cost no pass.
    p, f, price_term, fee_term, size_f = 0, 0, 0.0, 0.0, 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Rows with size 0 or huge values give inf or nan here and fail ``ok``.
        if price:
            p, p_ok = as_int64(price.mantissa)
            ok &= p_ok
            price_term = p.astype(float) * _ten(-x)
        if fee:
            f, f_ok = as_int64(fee.mantissa)
            ok &= f_ok & (size > 0)
            size_f = size.astype(float)
            fee_term = f.astype(float) * _ten(-y) / size_f
        qty_f = qty.astype(float)
        estimate = qty_f * (price_term + fee_sign * fee_term)
        magnitude = np.abs(qty_f) * (np.abs(price_term) + np.abs(fee_term))
        ok &= (magnitude < 2.0 ** 50) & (_ten(e) * size_f < 2.0 ** 60)
    e = np.where(ok, e, 0)
    denominator = POW10[e] * np.where(ok, size, 1) if fee else POW10[e]
    with np.errstate(over="ignore"):
        inner = p * _wrapped(e - x) if price else 0
        if fee:
            inner = inner * size + fee_sign * f * _wrapped(e - y)
        floor = np.floor(np.where(ok, estimate, 0.0)).astype(np.int64)
        # Wraps modulo 2**64, but its true value is within a few denominators of 0.
        remainder = qty * inner - floor * denominator
    floor += remainder // denominator
    return floor, remainder % denominator, denominator, ok


def _ten(exponent: np.ndarray) -> np.ndarray:
    """10.0**exponent; beyond +-120 (only on rows that fail ``e <= 18`` anyway) clipped."""
    return _POW10_FLOAT[np.clip(exponent, -_SPAN, _SPAN) + _SPAN]


def _wrapped(power: np.ndarray) -> np.ndarray:
    return _POW10_WRAPPED[np.clip(power, 0, len(_POW10_WRAPPED) - 1)]


def _amount_ints(qty: np.ndarray, x: np.ndarray, y: np.ndarray, e: np.ndarray,
                 price: Scaled | None, fee: Scaled | None, size: np.ndarray, fee_sign: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same fraction with Python ints: no bounds, no estimate."""
    ten = np.array(10, dtype=object)
    qty, size = qty.astype(object), size.astype(object)
    inner = np.zeros(len(qty), dtype=object)
    if price:
        inner = inner + price.mantissa.astype(object) * (size if fee else 1) * ten ** (e - x)
    if fee:
        inner = inner + fee_sign * fee.mantissa.astype(object) * ten ** (e - y)
    denominator = ten ** e * (size if fee else 1)
    numerator = qty * inner
    return numerator // denominator, numerator % denominator, denominator


def difference_rounded(a: Exact, b: Exact) -> np.ndarray:
    """Half-even rounding of ``a - b``, exactly (the difference, not of rounded values).

    ``a - b = (floor_a - floor_b) + f`` with ``f`` in (-1, 1). A float settles ``f`` against
    +-1/2 except near it; those rows, and rows already in Python ints, compare exactly.
    Computed :data:`_CHUNK` rows at a time, as :func:`amount` is.
    """
    if len(a.floor) > _CHUNK:
        return np.concatenate([_difference_rounded(a.take(rows), b.take(rows))
                               for rows in _chunks(len(a.floor))])
    return _difference_rounded(a, b)


def _difference_rounded(a: Exact, b: Exact) -> np.ndarray:
    """:func:`difference_rounded` of rows few enough for one pass."""
    base = a.floor - b.floor
    if a.floor.dtype == np.int64 and b.floor.dtype == np.int64:
        frac = a.remainder / a.denominator - b.remainder / b.denominator
        step = np.where(frac > 0.5, 1, np.where(frac < -0.5, -1, 0))
        near = np.flatnonzero(np.abs(np.abs(frac) - 0.5) < 1e-9)
    else:
        step, near = np.zeros(len(base), dtype=np.int64), np.arange(len(base))
    if len(near):
        step[near] = _exact_step(*(np.asarray(v[near], dtype=object) for v in (
            a.remainder, a.denominator, b.remainder, b.denominator, base)))
    return base + step


def _exact_step(a_rem: np.ndarray, a_den: np.ndarray, b_rem: np.ndarray, b_den: np.ndarray,
                base: np.ndarray) -> np.ndarray:
    """-1, 0 or 1: how ``base + a_rem/a_den - b_rem/b_den`` rounds half-even, in Python ints."""
    twice = 2 * (a_rem * b_den - b_rem * a_den)
    whole = a_den * b_den
    odd = (base % 2 == 1).astype(bool)
    up = ((twice > whole) | ((twice == whole) & odd)).astype(bool)
    down = ((twice < -whole) | ((twice == -whole) & odd)).astype(bool)
    return up.astype(np.int64) - down.astype(np.int64)
