"""Realized PnL per symbol and UTC day of a FIFO version (pure)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from recon_assets.fifo.columns import column_sums, exact
from recon_assets.money import round_money
from recon_assets.scaled import decimal_of, group_sums, to_places

DAILY_COLUMNS = ["day", "symbol", "sells", "allocated_size", "realized_pnl_usd"]


def pnl_by_symbol(allocations: pd.DataFrame) -> dict[str, Decimal]:
    """Sum matched ``pnl_usd`` per symbol (symbols in order; only those with matched rows).

    Summed as integers straight from the column (Arrow decimals from ``allocate``, Decimals
    from the ledger): a version of a million rows is neither copied nor turned into objects.
    """
    pnl, present = exact(allocations["pnl_usd"])
    matched = present & allocations["buy_order_id"].notna().to_numpy()
    codes, names = pd.factorize(allocations["symbol"], sort=True)
    places = int(pnl.places[matched].max(initial=0))
    sums = group_sums(np.where(matched, codes, -1), to_places(pnl, places), len(names))
    counted = np.bincount(codes[matched], minlength=len(names)) > 0
    return {str(name): round_money(decimal_of(total, places))
            for name, total, seen in zip(names, sums, counted) if seen}


def daily_pnl(allocations: pd.DataFrame) -> pd.DataFrame:
    """Sum matched ``pnl_usd`` per (sell day in UTC, symbol); unmatched rows carry no PnL.

    The day is the sell's: PnL is realized when the position is sold. Grouped on codes and
    summed as integers (:func:`recon_assets.fifo.columns.column_sums`), so a million-row
    version makes one Decimal per group, not per row.
    """
    matched = allocations["buy_order_id"].notna().to_numpy()
    if not matched.any():
        return pd.DataFrame(columns=DAILY_COLUMNS)
    days = pd.to_datetime(allocations["sell_time"], utc=True).dt.floor("D")
    day_codes, day_names = pd.factorize(days, sort=True)
    symbol_codes, symbol_names = pd.factorize(allocations["symbol"], sort=True)
    keys, inverse = np.unique(day_codes[matched].astype(np.int64) * len(symbol_names)
                              + symbol_codes[matched], return_inverse=True)
    codes = np.full(len(allocations), -1, dtype=np.int64)
    codes[matched] = inverse
    groups = pd.DataFrame({"day": day_names[keys // len(symbol_names)],
                           "symbol": np.asarray(symbol_names, dtype=object)[
                               keys % len(symbol_names)]})
    sell_codes = pd.factorize(allocations["sell_order_id"])[0][matched]
    spread = int(sell_codes.max()) + 1  # (group, sell) pairs as one int64, then counted
    pairs = np.unique(inverse.astype(np.int64) * spread + sell_codes)
    per_group = np.bincount(pairs // spread, minlength=len(groups))
    return daily_report(pd.DataFrame({
        "day": groups["day"].dt.date.to_numpy(),
        "symbol": groups["symbol"].to_numpy(),
        "sells": per_group,
        "allocated_size": column_sums(codes, allocations["allocated_size"], len(groups)),
        "pnl_usd": column_sums(codes, allocations["pnl_usd"], len(groups)),
    }))


def daily_report(sums: pd.DataFrame) -> pd.DataFrame:
    """The daily report from exact per-(day, symbol) sums (``day``, ``symbol``, ``sells``,
    ``allocated_size``, ``pnl_usd``; None for no value), however they were summed: in
    Python (:func:`daily_pnl`) or by the database. PnL is rounded half-even to 8 places
    once, on the day's sum."""
    if sums.empty:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    zero = Decimal(0)
    return pd.DataFrame({
        "day": sums["day"].to_numpy(dtype=object),
        "symbol": sums["symbol"].to_numpy(dtype=object),
        "sells": sums["sells"].to_numpy(dtype=np.int64),
        "allocated_size": pd.Series([zero if v is None else v for v in sums["allocated_size"]],
                                    dtype=object),
        "realized_pnl_usd": pd.Series([round_money(zero if v is None else v)
                                       for v in sums["pnl_usd"]], dtype=object),
    }, columns=DAILY_COLUMNS)
