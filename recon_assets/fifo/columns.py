"""Allocations next to the ledger orders they name, with exact integer columns.

Validation reads allocations straight from ``allocate`` (pyarrow decimals, ``pd.NA``) or back
from the database (``Decimal`` objects, ``None``; NaN from some drivers), and sums or compares
them per sell, per buy and per symbol. Doing that on scaled integers keeps it exact and
vectorized, like the allocation itself.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recon_assets.money import to_decimal
from recon_assets.scaled import (Scaled, decimal_of, group_sums, scale_arrow, scale_values,
                                 to_places)


def exact(series: pd.Series) -> tuple[Scaled, np.ndarray]:
    """A money or size column's exact values (0 where missing), and where they are present.

    Raises :class:`recon_assets.money.NotADecimal` on a value that is not a number.
    """
    present = series.notna().to_numpy()
    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_decimal(
            series.dtype.pyarrow_dtype):
        return scale_arrow(pa.array(series.array)), present
    values = series.to_numpy(dtype=object).copy()
    values[~present] = Decimal(0)
    return scale_values(values, missing=Decimal(0)), present


def shown_places(series: pd.Series, present: np.ndarray) -> int:
    """The most places a money column's present values are written with (trailing zeros
    count: an Arrow column's scale, a Decimal's exponent), so sums keep the column's scale as
    adding the Decimals would."""
    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_decimal(
            series.dtype.pyarrow_dtype):
        return int(series.dtype.pyarrow_dtype.scale) if present.any() else 0
    exponents = [to_decimal(v).as_tuple().exponent
                 for v in series.to_numpy(dtype=object)[present]]
    return max((-e for e in exponents if isinstance(e, int)), default=0)


def column_sums(codes: np.ndarray, series: pd.Series, groups: int,
                where: np.ndarray | None = None) -> list[Decimal | None]:
    """Exact sums of a money column's present values per code ``0..groups-1`` (code -1, and
    rows outside ``where``, left out), at the column's :func:`shown_places`; None for a group
    with no value. Summed as integers, never one Decimal per row."""
    scaled, present = exact(series)
    if where is not None:
        present = present & where
    places = max(shown_places(series, present), int(scaled.places[present].max(initial=0)))
    units = at_places(scaled, places)[0]
    counted = np.bincount(codes[present & (codes >= 0)], minlength=groups) > 0
    sums = group_sums(np.where(present, codes, -1), units, groups)
    return [decimal_of(total, places) if seen else None
            for total, seen in zip(sums.tolist(), counted)]


def ids(series: pd.Series) -> np.ndarray:
    """Order ids as text, None where missing (None, NaN or NA)."""
    return np.where(series.notna().to_numpy(), series.astype(object).to_numpy(), None)


def at_places(scaled: Scaled, places: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as integers at ``places`` (int64 or Python ints), and which rows fit that.

    A value with more places than asked is not representable there; it reads 0 and ``False``.
    """
    places = np.broadcast_to(np.asarray(places, dtype=np.int64), scaled.places.shape)
    fits = scaled.places <= places
    mantissa = np.where(fits, scaled.mantissa, 0)
    if scaled.mantissa.dtype == np.int64:
        mantissa = mantissa.astype(np.int64)
    return to_places(Scaled(mantissa, np.where(fits, scaled.places, places)), places), fits


def common_places(*parts: tuple[Scaled, np.ndarray]) -> int:
    """The most places among the present values of several columns."""
    return max((int(s.places[p].max()) for s, p in parts if p.any()), default=0)


def text(units: object, places: int) -> str:
    """An integer at ``places`` as a plain decimal string, for messages."""
    return format(decimal_of(units, places), "f")


class AllocationView:
    """The allocation rows and, per row, the ledger rows of its sell and buy (-1: none)."""

    def __init__(self, allocations: pd.DataFrame, ledger: pd.DataFrame):
        self.frame, self.ledger, self.n = allocations, ledger, len(allocations)
        self.sell_id = ids(allocations["sell_order_id"])
        self.buy_id = ids(allocations["buy_order_id"])
        self.matched = np.not_equal(self.buy_id, None)
        index = pd.Index(ledger["order_id"].to_numpy(dtype=object), dtype=object)
        self.sell_at = index.get_indexer(self.sell_id)
        self.buy_at = np.where(self.matched, index.get_indexer(self.buy_id), -1)
        self.size, self.size_present = exact(allocations["allocated_size"])
        self.ledger_price, self.ledger_fee, self.ledger_size = (
            exact(ledger[c])[0] for c in ("price", "total_fees_usd", "size"))
        self._columns: dict[str, tuple[Scaled, np.ndarray]] = {}

    def column(self, name: str) -> tuple[Scaled, np.ndarray]:
        """An allocation money column, exact, and where it is present (read once)."""
        if name not in self._columns:
            self._columns[name] = exact(self.frame[name])
        return self._columns[name]

    def failing(self, rows: np.ndarray, details: list[str]) -> list[dict[str, Any]]:
        """Failing allocation rows as dicts, each with what is wrong."""
        return [{"sell_order_id": self.sell_id[i], "buy_order_id": self.buy_id[i],
                 "symbol": self.frame["symbol"].iat[i], "detail": d}
                for i, d in zip(rows, details)]
