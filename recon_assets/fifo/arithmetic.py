"""The ``arithmetic`` rule: every stored amount against its exact recomputation from the ledger.

Amounts come from the ledger's prices, fees and sizes and the row's allocated size, through the
same exact arithmetic as ``allocate`` (:mod:`.amounts`), rounded half-even to 8 places once.
Prices must be the ledger's, to the last digit. Rows naming unknown orders are left to the
``references_exist`` rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recon_assets.fifo.amounts import amount, difference_rounded, fee_per_unit
from recon_assets.fifo.columns import AllocationView, at_places, text
from recon_assets.scaled import Scaled, spread, to_places

_MONEY = ["proceeds_usd", "net_proceeds_usd", "sell_fees_per_unit", "cost_basis_usd",
          "pnl_usd", "buy_fees_per_unit"]
_BUY_SIDE = {"cost_basis_usd", "pnl_usd", "buy_fees_per_unit", "buy_price"}


def arithmetic_failures(view: AllocationView, shown: int) -> tuple[int, list[dict[str, Any]]]:
    """How many rows have a wrong amount or price, and the first ``shown`` of them."""
    price, fee, size = view.ledger_price, view.ledger_fee, view.ledger_size
    rows = np.flatnonzero((view.sell_at >= 0) & (~view.matched | (view.buy_at >= 0)))
    sell, matched = view.sell_at[rows], np.flatnonzero(view.matched[rows])
    buy = view.buy_at[rows][matched]
    qty = Scaled(view.size.mantissa[rows], view.size.places[rows])
    sell_qty, sell_places, sell_size = _common(qty, size.take(sell))
    net = amount(sell_qty, sell_places, price.take(sell), fee.take(sell), sell_size, -1)
    buy_qty, buy_places, buy_size = _common(qty.take(matched), size.take(buy))
    cost = amount(buy_qty, buy_places, price.take(buy), fee.take(buy), buy_size, 1)
    expected = {
        "proceeds_usd": amount(sell_qty, sell_places, price.take(sell), None, sell_size,
                               1).rounded(),
        "net_proceeds_usd": net.rounded(),
        "sell_fees_per_unit": _fee_per_unit(fee, size, sell),
        "cost_basis_usd": spread(cost.rounded(), matched, len(rows)),
        "pnl_usd": spread(difference_rounded(net.take(matched), cost), matched, len(rows)),
        "buy_fees_per_unit": spread(_fee_per_unit(fee, size, buy), matched, len(rows)),
    }
    on_buy_side = np.zeros(len(rows), dtype=bool)
    on_buy_side[matched] = True
    every = np.ones(len(rows), dtype=bool)
    wrong: dict[str, np.ndarray] = {"allocated_size": ~view.size_present[rows]}
    for name in _MONEY:
        stored, present = view.column(name)
        units, fits = at_places(stored.take(rows), 8)
        right = present[rows] & fits & np.asarray(units == expected[name], dtype=bool)
        wrong[name] = np.where(on_buy_side if name in _BUY_SIDE else every, ~right,
                               present[rows])
    for name, orders in (("sell_price", sell),
                         ("buy_price", np.maximum(view.buy_at[rows], 0))):
        stored, present = view.column(name)
        right = present[rows] & _same(stored.take(rows), price.take(orders))
        wrong[name] = np.where(on_buy_side if name in _BUY_SIDE else every, ~right,
                               present[rows])
    bad = np.flatnonzero(np.logical_or.reduce(list(wrong.values())))

    def detail(j: int) -> str:
        name = next(n for n, w in wrong.items() if w[j])
        stored = view.frame[name].iat[rows[j]]
        stored = "NULL" if pd.isna(stored) else str(stored)
        if name not in expected:
            return f"{name}: stored {stored}, not the ledger's"
        want = text(expected[name][j], 8) if name not in _BUY_SIDE or on_buy_side[j] else "NULL"
        return f"{name}: stored {stored}, recomputed {want}"

    return len(bad), view.failing(rows[bad[:shown]], [detail(int(j)) for j in bad[:shown]])


def _common(qty: Scaled, size: Scaled) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A quantity and an order size as integers in one unit: the finer of their two."""
    places = np.maximum(qty.places, size.places)
    return to_places(qty, places), places, to_places(size, places)


def _fee_per_unit(fee: Scaled, size: Scaled, orders: np.ndarray) -> np.ndarray:
    return fee_per_unit(fee.take(orders), size.mantissa[orders], size.places[orders]).rounded()


def _same(a: Scaled, b: Scaled) -> np.ndarray:
    places = np.maximum(a.places, b.places)
    return np.asarray(to_places(a, places) == to_places(b, places), dtype=bool)
