"""Orders as the exchange reports them, derived from the fills so the two can never disagree.

The real exchange computes an order's ``filled_size``, ``average_filled_price`` and
``total_fees`` from its fills; doing the same here (exactly, with the SPEC section 4 rules)
means a client that reads orders and one that aggregates fills must reach the same numbers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any, Iterable

from recon_assets.exchange.simulator.book import StoredFill
from recon_assets.money import EXACT, decimal_str


@dataclass(frozen=True)
class StoredOrder:
    """One order as served, with the values the server filters and sorts on."""

    order: dict[str, Any]
    order_id: str
    product_id: str
    side: str
    created_time: datetime
    last_fill_time: datetime


def _order(fills: list[StoredFill]) -> StoredOrder:
    first, last = fills[0], fills[-1]
    side = first.fill["side"]
    with localcontext(EXACT):
        filled_size = sum((f.base_size for f in fills), Decimal(0))
        filled_value = sum((f.base_size * f.price for f in fills), Decimal(0))
        total_fees = sum((f.commission for f in fills), Decimal(0))
        average = filled_value / filled_size if filled_size else Decimal(0)
        after_fees = filled_value + total_fees if side == "BUY" else filled_value - total_fees
    in_quote = first.fill["size_in_quote"]
    configuration = ({"quote_size": decimal_str(filled_value)} if in_quote
                     else {"base_size": decimal_str(filled_size)})
    order_id = first.fill["order_id"]
    order = {
        "order_id": order_id,
        "product_id": first.fill["product_id"],
        "user_id": first.fill["user_id"],
        "order_configuration": {"market_market_ioc": configuration},
        "side": side,
        # Stable across restarts, so a client can rely on it like on the real one.
        "client_order_id": str(uuid.uuid5(uuid.NAMESPACE_OID, order_id)),
        "status": "FILLED",
        "time_in_force": "IMMEDIATE_OR_CANCEL",
        "created_time": first.fill["trade_time"],
        "completion_percentage": "100",
        "filled_size": decimal_str(filled_size),
        "average_filled_price": decimal_str(average),
        "fee": "",
        "number_of_fills": str(len(fills)),
        "filled_value": decimal_str(filled_value),
        "pending_cancel": False,
        "size_in_quote": in_quote,
        "total_fees": decimal_str(total_fees),
        "size_inclusive_of_fees": False,
        "total_value_after_fees": decimal_str(after_fees),
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": "MARKET",
        "reject_reason": "",
        "settled": True,
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "",
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": "0",
        "is_liquidation": False,
        "last_fill_time": last.fill["trade_time"],
        "edit_history": [],
        "retail_portfolio_id": first.fill.get("retail_portfolio_id", ""),
    }
    return StoredOrder(order, order_id, order["product_id"], side, first.trade_time,
                       last.trade_time)


def orders_from_fills(fills: Iterable[StoredFill]) -> list[StoredOrder]:
    """One order per ``order_id``, newest first (``created_time``, then ``order_id``), as the
    real list-orders endpoint returns them."""
    groups: dict[str, list[StoredFill]] = {}
    for fill in fills:
        groups.setdefault(fill.fill["order_id"], []).append(fill)
    orders = [_order(sorted(group, key=lambda f: (f.trade_time, f.sequence_time, f.index)))
              for group in groups.values()]
    orders.sort(key=lambda o: (o.created_time, o.order_id), reverse=True)
    return orders
