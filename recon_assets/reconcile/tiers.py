"""The three reconciliation tiers (SPEC section 4) as pure functions over trades frames.

The tier assets fetch exchange orders and ledger rows for the relevant symbols and times,
then call these. Windows are inclusive at both ends, in UTC.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from recon_assets.exchange.models import is_fill, is_spot
from recon_assets.money import decimal_str
from recon_assets.reconcile.aggregate import find_duplicate_fills
from recon_assets.reconcile.compare import (DUPLICATE_COLUMNS, MISMATCH_COLUMNS, OrderDiff,
                                            Tolerances, compare_orders, empty_frame)
from recon_assets.scaled import group_starts, group_sums, scale_values, to_decimals
from recon_assets.trades import TRADE_COLUMNS, empty_trades

Window = tuple[pd.Timestamp, pd.Timestamp]
BUCKET_KEYS = ["symbol", "day", "side"]
BUCKET_COLUMNS = [*BUCKET_KEYS, "count", "size_sum"]


# -- tier 1: missing orders behind unmatched sells --------------------------------------------

def tier1_windows(unmatched: pd.DataFrame, lookback: timedelta = timedelta(days=30)
                  ) -> dict[str, Window]:
    """Per symbol with unmatched sells: from ``lookback`` before the first one to the last.

    ``unmatched`` has columns ``symbol`` and ``sell_time``. A missing buy that an unmatched
    sell should have consumed lies before that sell; the lookback bounds how far back to look.
    """
    if unmatched.empty:
        return {}
    times = pd.to_datetime(unmatched["sell_time"], utc=True)
    spans = times.groupby(unmatched["symbol"].to_numpy()).agg(["min", "max"])
    return {str(symbol): (row["min"] - pd.Timedelta(lookback), row["max"])
            for symbol, row in spans.iterrows()}


def in_windows(trades: pd.DataFrame, windows: dict[str, Window]) -> np.ndarray:
    """Which rows of a trades frame fall in their symbol's window."""
    symbols = trades["symbol"]
    start = symbols.map({s: w[0] for s, w in windows.items()})
    end = symbols.map({s: w[1] for s, w in windows.items()})
    times = pd.to_datetime(trades["order_time"], utc=True)
    start, end = pd.to_datetime(start, utc=True), pd.to_datetime(end, utc=True)
    return ((times >= start) & (times <= end)).to_numpy(dtype=bool)


def tier1_missing(exchange_orders: pd.DataFrame, ledger: pd.DataFrame,
                  windows: dict[str, Window]) -> OrderDiff:
    """Exchange orders inside the windows whose ``order_id`` is nowhere in the ledger.

    Both buys and sells (the old bot only looked for buys). Only ``missing_orders`` is
    filled: tier 1 answers "what breaks FIFO", the deep audit answers the rest. The ledger is
    searched whole, so an order booked with a slightly different time is not called missing.
    """
    candidates = exchange_orders[in_windows(exchange_orders, windows)]
    missing = candidates[~candidates["order_id"].isin(ledger["order_id"])]
    return OrderDiff(missing.reset_index(drop=True)[TRADE_COLUMNS], empty_trades(),
                     empty_frame(MISMATCH_COLUMNS), empty_frame(DUPLICATE_COLUMNS))


# -- tier 2: count buckets ----------------------------------------------------------------------

def _days(trades: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(trades["order_time"], utc=True).dt.date


def count_buckets(trades: pd.DataFrame) -> pd.DataFrame:
    """Order count and exact size sum per symbol, UTC day (a ``datetime.date``) and side."""
    if trades.empty:
        return empty_frame(BUCKET_COLUMNS)
    keys = pd.DataFrame({"symbol": trades["symbol"].to_numpy(dtype=object),
                         "day": _days(trades).to_numpy(dtype=object),
                         "side": trades["side"].to_numpy(dtype=object)})
    codes = keys.groupby(BUCKET_KEYS, sort=True).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    starts = group_starts(codes[order])
    size = scale_values(trades["size"].to_numpy(dtype=object)[order])
    buckets = keys.iloc[order[starts]].reset_index(drop=True)
    buckets["count"] = np.diff(np.r_[starts, len(order)]).astype(np.int64)
    buckets["size_sum"] = to_decimals(group_sums(codes[order], size.ints_at(size.most_places),
                                                 len(starts)), size.most_places)
    return buckets


def differing_buckets(exchange_buckets: pd.DataFrame, ledger_buckets: pd.DataFrame,
                      size_tolerance: Decimal = Tolerances().size) -> pd.DataFrame:
    """Buckets whose counts differ, or whose size sums differ by more than the tolerance.

    Outer join: a bucket only one side has counts 0 on the other. The size allowance is
    ``size_tolerance`` per order in the bucket (the per-order tolerance of :class:`Tolerances`
    summed), so values the ledger rounded are not drilled down for nothing. Columns: the keys,
    then ``exchange_count``, ``ledger_count``, ``exchange_size_sum``, ``ledger_size_sum``.
    """
    joined = exchange_buckets.merge(ledger_buckets, on=BUCKET_KEYS, how="outer",
                                    suffixes=("_exchange", "_ledger"))
    out = joined[BUCKET_KEYS].copy()
    for side in ("exchange", "ledger"):
        out[f"{side}_count"] = joined[f"count_{side}"].fillna(0).astype(np.int64)
        sums = joined[f"size_sum_{side}"].astype(object)
        out[f"{side}_size_sum"] = sums.where(sums.notna(), Decimal(0))
    e, l = scale_values(out["exchange_size_sum"]), scale_values(out["ledger_size_sum"])
    tol = scale_values([size_tolerance])
    scale = max(e.most_places, l.most_places, tol.most_places)
    allowed = tol.ints_at(scale)[0] * np.maximum(
        out["exchange_count"].to_numpy(), out["ledger_count"].to_numpy()).astype(object)
    differs = (out["exchange_count"] != out["ledger_count"]).to_numpy() | (
        np.abs(e.ints_at(scale) - l.ints_at(scale)) > allowed).astype(bool)
    columns = [*BUCKET_KEYS, "exchange_count", "ledger_count", "exchange_size_sum",
               "ledger_size_sum"]
    return out.loc[differs, columns].reset_index(drop=True)


def drill_down(exchange_orders: pd.DataFrame, ledger: pd.DataFrame, buckets: pd.DataFrame,
               tolerances: Tolerances = Tolerances()) -> OrderDiff:
    """Compare only the orders that fall in the given (differing) buckets."""
    wanted = pd.MultiIndex.from_frame(buckets[BUCKET_KEYS])

    def chosen(trades: pd.DataFrame) -> pd.DataFrame:
        keys = pd.MultiIndex.from_arrays([trades["symbol"], _days(trades), trades["side"]])
        return trades[keys.isin(wanted)]

    return compare_orders(chosen(exchange_orders), chosen(ledger), tolerances)


# -- tier 3: deep audit -------------------------------------------------------------------------

def full_audit(exchange_orders: pd.DataFrame, ledger: pd.DataFrame,
               fills: pd.DataFrame | None = None, window: Window | None = None,
               tolerances: Tolerances = Tolerances()) -> OrderDiff:
    """Everything in the window: missing, phantom, mismatched, duplicated orders and fills.

    Duplicate fills (see :func:`find_duplicate_fills`) become ``duplicates`` rows with source
    ``"fills"``, one per repeated trade id (conflicting reports included) or group of
    identical fills. Each REVERSAL, CORRECTION or SYNTHETIC entry becomes a ``mismatches`` row
    of its order (field ``trade_type``): it is not counted, so a person must review the order.
    Fills of non-spot products are not the ledger's business and are left out, as in every
    tier.
    """
    if window is not None:
        exchange_orders, ledger = _within(exchange_orders, window), _within(ledger, window)
        if fills is not None:
            times = pd.to_datetime(fills["trade_time"], utc=True)
            fills = fills[(times >= window[0]) & (times <= window[1])]
    diff = compare_orders(exchange_orders, ledger, tolerances)
    if fills is None or fills.empty:
        return diff
    fills = fills[is_spot(fills["product_id"])]
    entries = _entry_findings(fills[~is_fill(fills)])
    if len(entries):
        diff = dataclasses.replace(diff, mismatches=entries if diff.mismatches.empty else
                                   pd.concat([diff.mismatches, entries], ignore_index=True))
    found = find_duplicate_fills(fills)
    if found.empty:
        return diff
    groups = found.groupby(["order_id", "duplicate_kind", "duplicate_of"], sort=True).size()
    rows = pd.DataFrame({
        "order_id": pd.Series(groups.index.get_level_values(0), dtype=object),
        "source": "fills",
        "count": groups.to_numpy(dtype=np.int64),
        "detail": [_duplicate_detail(kind, of, n) for (_, kind, of), n in groups.items()],
    }, columns=DUPLICATE_COLUMNS)
    both = rows if diff.duplicates.empty else pd.concat([diff.duplicates, rows],
                                                        ignore_index=True)
    return dataclasses.replace(diff, duplicates=both)


def _duplicate_detail(kind: str, of: str, n: int) -> str:
    if kind == "conflict":
        return (f"trade id {of} reported {n} times with different values (the first report "
                "seen is counted; every version is kept in exchange_fill_conflicts)")
    if kind == "trade_id":
        return f"trade id {of} reported {n} times"
    return f"{n} fills identical to trade id {of} (order, time, price, size)"


def _entry_findings(entries: pd.DataFrame) -> pd.DataFrame:
    """One ``trade_type`` mismatch row per non-FILL entry, naming the entry and its values."""
    if entries.empty:
        return empty_frame(MISMATCH_COLUMNS)
    return pd.DataFrame({
        "order_id": entries["order_id"].to_numpy(dtype=object),
        "symbol": entries["product_id"].to_numpy(dtype=object),
        "field": "trade_type",
        "exchange_value": [
            f"{e['trade_type']} entry {e['entry_id']} of trade {e['trade_id']} (size "
            f"{_text(e['size'])}, price {_text(e['price'])}, commission "
            f"{_text(e['commission'])}) is not counted: review the order"
            for e in entries.to_dict("records")],
        "ledger_value": None,
    }, columns=MISMATCH_COLUMNS)


def _within(trades: pd.DataFrame, window: Window) -> pd.DataFrame:
    times = pd.to_datetime(trades["order_time"], utc=True)
    return trades[(times >= window[0]) & (times <= window[1])]


# -- the human report ---------------------------------------------------------------------------

def report_lines(diff: OrderDiff, tier: int, limit: int = 20) -> list[str]:
    """The summary a person reads: counts first, then up to ``limit`` rows of each finding.

    Always contains the exact line ``Missing BUY orders found: N`` (missing buys are what
    break FIFO); tier 1 reports only missing orders, so it omits the other counts.
    """
    counts = diff.counts()
    lines = [f"Tier {tier} reconciliation: {'clean' if diff.is_clean else 'findings'}",
             f"Missing BUY orders found: {counts['missing_buys']}",
             f"Missing SELL orders found: {counts['missing_orders'] - counts['missing_buys']}"]
    if tier != 1:
        lines += [f"Phantom orders (in the ledger, not on the exchange): "
                  f"{counts['phantom_orders']}",
                  f"Field mismatches: {counts['mismatches']} in "
                  f"{counts['mismatched_orders']} orders",
                  f"Duplicates: {counts['duplicates']}"]
    lines += _rows("MISSING", diff.missing_orders, limit, _order_text)
    lines += _rows("PHANTOM", diff.phantom_orders, limit, _order_text)
    lines += _rows("MISMATCH", diff.mismatches, limit, lambda r: (
        f"{r['order_id']} {r['symbol']} {r['field']}: exchange {_text(r['exchange_value'])}, "
        f"ledger {_text(r['ledger_value'])}"))
    lines += _rows("DUPLICATE", diff.duplicates, limit,
                   lambda r: f"{r['order_id']} ({r['source']}): {r['detail']}")
    return lines


def _rows(label: str, frame: pd.DataFrame, limit: int, text: Any) -> list[str]:
    lines = [f"  {label} {text(row)}" for row in frame.head(limit).to_dict("records")]
    if len(frame) > limit:
        lines.append(f"  ... and {len(frame) - limit} more {label.lower()} rows")
    return lines


def _order_text(row: dict[str, Any]) -> str:
    return (f"{row['side']} {row['symbol']} {row['order_id']} at "
            f"{pd.Timestamp(row['order_time']).isoformat()}: size {_text(row['size'])} "
            f"price {_text(row['price'])} fee {_text(row['total_fees_usd'])}")


def _text(value: Any) -> str:
    return decimal_str(value) if isinstance(value, Decimal) else str(value)
