"""Realized PnL per symbol and UTC day of a FIFO version (pure)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from recon_assets.fifo.columns import exact
from recon_assets.money import round_money, to_decimal
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

    The day is the sell's: PnL is realized when the position is sold.
    """
    matched = allocations[allocations["buy_order_id"].notna()]
    if matched.empty:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    frame = pd.DataFrame({
        "day": pd.to_datetime(matched["sell_time"], utc=True).dt.date.to_numpy(),
        "symbol": matched["symbol"].to_numpy(),
        "sell_order_id": matched["sell_order_id"].to_numpy(),
        "size": [to_decimal(v) for v in matched["allocated_size"]],
        "pnl": [to_decimal(v) for v in matched["pnl_usd"]],
    })
    grouped = frame.groupby(["day", "symbol"], sort=True)
    out = pd.DataFrame({
        "sells": grouped["sell_order_id"].nunique(),
        "allocated_size": grouped["size"].agg(lambda s: sum(s, Decimal(0))),
        "realized_pnl_usd": grouped["pnl"].agg(lambda s: round_money(sum(s, Decimal(0)))),
    }).reset_index()
    return out[DAILY_COLUMNS]
