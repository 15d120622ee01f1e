"""Order-level diff of the exchange against the ledger (SPEC sections 4 and 8).

Both sides are trades frames (exchange orders already aggregated from fills). The diff is one
hash pass over both sides' order ids and column-wise comparisons: Decimal equality runs in
numpy's C loop, and only the values that are not equal (few) are converted to scaled integers
to test the tolerances exactly. A million orders a side take about a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from recon_assets.errors import BadRowError
from recon_assets.scaled import scale_values
from recon_assets.trades import TRADE_COLUMNS

MISMATCH_COLUMNS = ["order_id", "symbol", "field", "exchange_value", "ledger_value"]
DUPLICATE_COLUMNS = ["order_id", "source", "count", "detail"]
#: Compared fields, in report order; ``fee`` is ``total_fees_usd``.
FIELDS = {"side": "side", "symbol": "symbol", "size": "size", "price": "price",
          "fee": "total_fees_usd"}


@dataclass(frozen=True)
class Tolerances:
    """How far exchange and ledger values may differ before it is a mismatch.

    Defaults: ``size`` 1e-8 base units, absolute (the FIFO dust); ``price`` 1e-8 absolute or
    relative to the larger price, whichever allows more (an 18-place average price stored by
    the bot as a double keeps ~16 significant digits, more than 1e-8 off for large values);
    ``fee`` 1e-6 quote currency, absolute. A difference equal to the tolerance is not a
    mismatch; only a larger one is.
    """

    size: Decimal = Decimal("1e-8")
    price: Decimal = Decimal("1e-8")
    fee: Decimal = Decimal("1e-6")


@dataclass(frozen=True)
class OrderDiff:
    """What differs between the exchange and the ledger, as DataFrames.

    ``missing_orders``: on the exchange, not in the ledger (trades columns, exchange values).
    ``phantom_orders``: in the ledger, not on the exchange (trades columns, ledger values).
    ``mismatches``: one row per differing field (:data:`MISMATCH_COLUMNS`).
    ``duplicates``: order ids seen more than once, by source (:data:`DUPLICATE_COLUMNS`).
    """

    missing_orders: pd.DataFrame
    phantom_orders: pd.DataFrame
    mismatches: pd.DataFrame
    duplicates: pd.DataFrame

    @property
    def is_clean(self) -> bool:
        return all(frame.empty for frame in (self.missing_orders, self.phantom_orders,
                                             self.mismatches, self.duplicates))

    @property
    def missing_buys(self) -> pd.DataFrame:
        """Missing buy orders: the ones that break FIFO (``Missing BUY orders found: N``)."""
        return self.missing_orders[self.missing_orders["side"] == "buy"]

    def counts(self) -> dict[str, int]:
        """Row counts per finding, plus ``missing_buys`` and ``mismatched_orders``."""
        return {"missing_orders": len(self.missing_orders),
                "missing_buys": len(self.missing_buys),
                "phantom_orders": len(self.phantom_orders),
                "mismatches": len(self.mismatches),
                "mismatched_orders": int(self.mismatches["order_id"].nunique()),
                "duplicates": len(self.duplicates)}


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """No rows, the given columns: so an empty finding still has its documented shape."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def compare_orders(exchange: pd.DataFrame, ledger: pd.DataFrame,
                   tolerances: Tolerances = Tolerances()) -> OrderDiff:
    """Diff two trades frames on ``order_id``.

    One hash pass (``factorize``) over both sides' order ids gives every join: what only the
    exchange has, what only the ledger has, the aligned pairs, and ids repeated within a side.
    A repeated id is reported in ``duplicates`` and compared through its first row. Missing
    fees count as 0 (SPEC section 2). Raises :class:`BadRowError` naming the orders when a
    required column is absent or an order id, or a compared price or size, is missing.
    """
    _check_columns(exchange, "exchange")
    _check_columns(ledger, "ledger")
    codes, order_ids = pd.factorize(np.concatenate([
        exchange["order_id"].to_numpy(dtype=object), ledger["order_id"].to_numpy(dtype=object)]))
    if (codes < 0).any():
        raise BadRowError("orders", [
            (f"exchange row {i}" if i < len(exchange) else f"ledger row {i - len(exchange)}",
             "order_id", "missing") for i in np.flatnonzero(codes < 0)])
    e_first, e_count = _first_rows(codes[:len(exchange)], len(order_ids))
    l_first, l_count = _first_rows(codes[len(exchange):], len(order_ids))
    duplicates = pd.concat([_duplicates(order_ids, e_count, "exchange"),
                            _duplicates(order_ids, l_count, "ledger")], ignore_index=True)
    both = (e_count > 0) & (l_count > 0)
    return OrderDiff(
        missing_orders=_trades(exchange, e_first[(e_count > 0) & ~both]),
        phantom_orders=_trades(ledger, l_first[(l_count > 0) & ~both]),
        mismatches=_mismatches(exchange, e_first[both], ledger, l_first[both], tolerances),
        duplicates=duplicates if not duplicates.empty else empty_frame(DUPLICATE_COLUMNS))


def _check_columns(frame: pd.DataFrame, source: str) -> None:
    absent = [c for c in TRADE_COLUMNS if c not in frame.columns and c != "total_fees_usd"]
    if absent:
        raise BadRowError(f"{source} orders", [("*", c, "column missing") for c in absent])


def _first_rows(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per order id code: the row of its first occurrence (-1 if none) and its row count."""
    count = np.bincount(codes, minlength=n)
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    first[count == 0] = -1
    return first, count


def _trades(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The given rows as a trades frame, a missing fee (or fee column) read as 0."""
    out = frame.iloc[rows].reset_index(drop=True)
    fees = out.get("total_fees_usd", pd.Series([None] * len(out), dtype=object))
    out["total_fees_usd"] = fees.astype(object).where(fees.notna(), Decimal(0))
    return out[TRADE_COLUMNS]


def _duplicates(order_ids: np.ndarray, counts: np.ndarray, source: str) -> pd.DataFrame:
    repeated = np.flatnonzero(counts > 1)
    return pd.DataFrame({
        "order_id": pd.Series(order_ids[repeated], dtype=object),
        "source": source,
        "count": counts[repeated].astype(np.int64),
        "detail": [f"order id appears {n} times in the {source} orders"
                   for n in counts[repeated]],
    }, columns=DUPLICATE_COLUMNS)


def _column(frame: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """A column at ``rows``: float64 as floats (compared in numpy's float loop; only the
    values that differ become objects), any other column as objects."""
    if column not in frame.columns:  # only total_fees_usd may be absent: NULL = 0
        return np.full(len(rows), Decimal(0), dtype=object)
    series = frame[column]
    if series.dtype == np.float64:
        return series.to_numpy()[rows]
    return series.to_numpy(dtype=object)[rows]


def _mismatches(exchange: pd.DataFrame, e_rows: np.ndarray, ledger: pd.DataFrame,
                l_rows: np.ndarray, tolerances: Tolerances) -> pd.DataFrame:
    """One row per (order, field) that differs, ordered like the exchange's rows."""
    order_ids = exchange["order_id"].to_numpy(dtype=object)[e_rows]
    found = []
    for field, column in FIELDS.items():
        e_values, l_values = _column(exchange, column, e_rows), _column(ledger, column, l_rows)
        if field in ("side", "symbol"):
            rows = np.flatnonzero(e_values != l_values)
        else:
            rows = _beyond(e_values, l_values, getattr(tolerances, field), field, order_ids)
        if len(rows):
            found.append(pd.DataFrame({
                "order_id": order_ids[rows],
                "symbol": exchange["symbol"].to_numpy(dtype=object)[e_rows[rows]],
                "field": field, "exchange_value": e_values[rows].astype(object),
                "ledger_value": l_values[rows].astype(object), "_row": rows}))
    if not found:
        return empty_frame(MISMATCH_COLUMNS)
    out = pd.concat(found, ignore_index=True).sort_values("_row", kind="stable")
    return out[MISMATCH_COLUMNS].reset_index(drop=True)


def _beyond(e_values: np.ndarray, l_values: np.ndarray, tolerance: Decimal, field: str,
            order_ids: np.ndarray) -> np.ndarray:
    """Positions where two exact value columns differ by more than the tolerance.

    Equal values are skipped in one vectorized ``!=``; only the rest are converted and
    compared as scaled integers: ``|e - l| > tol``, and for the price also
    ``|e - l| > tol * max(|e|, |l|)`` (the larger allowance wins).
    """
    candidates = np.flatnonzero(e_values != l_values)
    if len(candidates) == 0:
        return candidates
    e_sub, l_sub = e_values[candidates], l_values[candidates]
    null = pd.isna(e_sub) | pd.isna(l_sub)
    if field == "fee":  # a NULL fee is 0
        e_sub = np.where(pd.isna(e_sub), Decimal(0), e_sub)
        l_sub = np.where(pd.isna(l_sub), Decimal(0), l_sub)
    elif null.any():
        raise BadRowError("orders", [(str(oid), field, "missing")
                                     for oid in order_ids[candidates[null]]])
    e, l, tol = scale_values(e_sub), scale_values(l_sub), scale_values([tolerance])
    scale = max(e.most_places, l.most_places, tol.most_places)
    e_ints, l_ints, (tol_ints,) = e.ints_at(scale), l.ints_at(scale), tol.ints_at(scale)
    difference = np.abs(e_ints - l_ints)
    beyond = difference > tol_ints
    if field == "price":  # difference > tolerance * largest, both sides times 10**scale
        largest = np.maximum(np.abs(e_ints), np.abs(l_ints))
        beyond &= difference * 10 ** scale > tol_ints * largest
    return candidates[beyond]
