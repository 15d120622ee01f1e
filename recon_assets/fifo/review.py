"""The unmatched-sells set of a version: what the review queue and tier 1 start from."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from recon_assets.money import to_decimal

REVIEW_COLUMNS = ["sell_order_id", "symbol", "sell_time", "sell_size", "unmatched_size",
                  "inventory_at_sell", "notes"]


def unmatched_sells(allocations: pd.DataFrame) -> pd.DataFrame:
    """One row per sell with an unmatched remainder, with the inventory it found.

    FIFO lets a sell consume everything held at its time before anything is left unmatched,
    so the inventory at the sell is exactly its matched part: ``sell_size - unmatched_size``.
    """
    if allocations.empty:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    sizes = allocations["allocated_size"].map(to_decimal)
    sell_size = sizes.groupby(allocations["sell_order_id"]).agg(lambda s: sum(s, Decimal(0)))
    unmatched = allocations[allocations["buy_order_id"].isna()]
    if unmatched.empty:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    out = pd.DataFrame({
        "sell_order_id": unmatched["sell_order_id"].to_numpy(),
        "symbol": unmatched["symbol"].to_numpy(),
        "sell_time": pd.to_datetime(unmatched["sell_time"], utc=True).to_numpy(),
        "sell_size": sell_size.loc[unmatched["sell_order_id"]].to_numpy(),
        "unmatched_size": sizes.loc[unmatched.index].to_numpy(),
        "notes": unmatched["notes"].to_numpy(),
    })
    out["sell_time"] = pd.to_datetime(out["sell_time"], utc=True)
    out["inventory_at_sell"] = [s - u for s, u in zip(out["sell_size"], out["unmatched_size"])]
    return out[REVIEW_COLUMNS].sort_values(["symbol", "sell_time", "sell_order_id"],
                                           ignore_index=True)
