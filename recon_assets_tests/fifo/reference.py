"""A plain FIFO, written straight from SPEC section 3, to check ``allocate`` against.

One deque of open lots per symbol, Decimal sizes, ``Fraction`` money rounded once at the end.
Deliberately naive and independent of ``recon_assets.fifo``: it shares only the SPEC and the
helpers every module uses (dust, exact context). It is also the baseline of
``benchmarks/fifo.py``.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pandas as pd

from recon_assets.money import DUST, EXACT, to_decimal

COLUMNS = [
    "sell_order_id", "buy_order_id", "symbol", "allocated_size", "buy_price", "sell_price",
    "buy_fees_per_unit", "sell_fees_per_unit", "cost_basis_usd", "proceeds_usd",
    "net_proceeds_usd", "pnl_usd", "buy_time", "sell_time", "notes",
]


def reference_allocate(trades: pd.DataFrame) -> pd.DataFrame:
    """FIFO allocations of a normalized trades frame, one dict per row, as a DataFrame."""
    orders = [_order(row) for row in trades.to_dict("records")]
    orders.sort(key=lambda o: (o["symbol"], o["order_time"], o["side"] != "buy", o["order_id"]))
    rows: list[dict[str, Any]] = []
    lots: dict[str, deque] = {}
    with localcontext(EXACT):
        for order in orders:
            queue = lots.setdefault(order["symbol"], deque())
            if order["side"] == "buy":
                queue.append([order, order["size"]])
                continue
            remaining = order["size"]
            while remaining > 0 and queue:
                lot = queue[0]
                qty = min(remaining, lot[1])
                rows.append(_matched(order, lot[0], qty))
                lot[1] -= qty
                remaining -= qty
                if lot[1] == 0:
                    queue.popleft()
            if remaining > DUST:
                rows.append(_unmatched(order, remaining))
    return pd.DataFrame(rows, columns=COLUMNS)


def _order(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "side": row["side"].lower(), "price": to_decimal(row["price"]),
            "size": to_decimal(row["size"]),
            "total_fees_usd": to_decimal(row["total_fees_usd"]) or Decimal(0)}


def _money(value: Fraction) -> Decimal:
    """Half-even to 8 places (``round`` on a Fraction rounds half to even)."""
    return Decimal(round(value * 10 ** 8)).scaleb(-8)


def _fee_per_unit(order: dict[str, Any]) -> Fraction:
    return Fraction(order["total_fees_usd"]) / Fraction(order["size"])


def _matched(sell: dict[str, Any], buy: dict[str, Any], qty: Decimal) -> dict[str, Any]:
    q = Fraction(qty)
    cost = (Fraction(buy["price"]) + _fee_per_unit(buy)) * q
    proceeds = Fraction(sell["price"]) * q
    net = proceeds - _fee_per_unit(sell) * q
    return {
        "sell_order_id": sell["order_id"], "buy_order_id": buy["order_id"],
        "symbol": sell["symbol"], "allocated_size": qty,
        "buy_price": buy["price"], "sell_price": sell["price"],
        "buy_fees_per_unit": _money(_fee_per_unit(buy)),
        "sell_fees_per_unit": _money(_fee_per_unit(sell)),
        "cost_basis_usd": _money(cost), "proceeds_usd": _money(proceeds),
        "net_proceeds_usd": _money(net), "pnl_usd": _money(net - cost),
        "buy_time": buy["order_time"], "sell_time": sell["order_time"], "notes": None,
    }


def _unmatched(sell: dict[str, Any], remaining: Decimal) -> dict[str, Any]:
    q = Fraction(remaining)
    proceeds = Fraction(sell["price"]) * q
    return {
        "sell_order_id": sell["order_id"], "buy_order_id": None, "symbol": sell["symbol"],
        "allocated_size": remaining, "buy_price": None, "sell_price": sell["price"],
        "buy_fees_per_unit": None, "sell_fees_per_unit": _money(_fee_per_unit(sell)),
        "cost_basis_usd": None, "proceeds_usd": _money(proceeds),
        "net_proceeds_usd": _money(proceeds - _fee_per_unit(sell) * q), "pnl_usd": None,
        "buy_time": None, "sell_time": sell["order_time"],
        "notes": (f"UNMATCHED: {format(remaining.normalize(EXACT), 'f')} of "
                  f"{format(sell['size'], 'f')} not covered by earlier buys"),
    }
