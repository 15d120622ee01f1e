"""pnl_by_symbol: the per-symbol PnL a version reports, the same from allocate's Arrow decimals
and from the ledger's Decimal objects."""

from __future__ import annotations

import random
from decimal import Decimal

import pandas as pd

from recon_assets.fifo import allocate
from recon_assets.fifo.reports import pnl_by_symbol
from recon_assets.money import round_money
from recon_assets_tests.fifo.histories import random_history


def _plain_sums(allocations: pd.DataFrame) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for symbol, buy, pnl in zip(allocations["symbol"], allocations["buy_order_id"].tolist(),
                                allocations["pnl_usd"].tolist()):
        if buy is not None and buy is not pd.NA:
            sums[symbol] = sums.get(symbol, Decimal(0)) + pnl
    return {s: round_money(v) for s, v in sorted(sums.items())}


def test_pnl_by_symbol_sums_matched_rows_exactly() -> None:
    for seed in range(20):
        allocations = allocate(random_history(random.Random(seed), 200, symbols=3))
        expected = _plain_sums(allocations)
        assert pnl_by_symbol(allocations) == expected
        as_objects = allocations.astype(object).where(allocations.notna(), None)
        assert pnl_by_symbol(as_objects) == expected  # as read back from the ledger


def test_symbols_with_only_unmatched_sells_have_no_entry() -> None:
    allocations = pd.DataFrame({"symbol": ["A-USD", "B-USD", "B-USD"],
                                "buy_order_id": [None, "b1", "b2"],
                                "pnl_usd": [None, Decimal("0.10000001"), Decimal("-3")]})
    assert pnl_by_symbol(allocations) == {"B-USD": Decimal("-2.89999999")}
