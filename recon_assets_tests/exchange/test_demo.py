"""The demo history: reproducible, realistic, exact when aggregated, and broken where intended."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext
from typing import Any

import pytest

from recon_assets.exchange.demo import DemoHistory, demo_history
from recon_assets.exchange.models import FILL_COLUMNS
from recon_assets.money import DUST, EXACT

END = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def history() -> DemoHistory:
    return demo_history()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _aggregate(fills: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """SPEC section 4, written out plainly for this check only."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fill in fills:
        groups[fill["order_id"]].append(fill)
    orders = {}
    with localcontext(EXACT):
        for order_id, group in groups.items():
            group.sort(key=lambda f: _time(f["trade_time"]))
            bases = [Decimal(f["size"]) / Decimal(f["price"]) if f["size_in_quote"]
                     else Decimal(f["size"]) for f in group]
            size = sum(bases, Decimal(0))
            value = sum((b * Decimal(f["price"]) for b, f in zip(bases, group)), Decimal(0))
            orders[order_id] = {
                "order_id": order_id, "symbol": group[0]["product_id"],
                "side": group[0]["side"].lower(), "order_time": _time(group[0]["trade_time"]),
                "price": value / size, "size": size,
                "total_fees_usd": sum((Decimal(f["commission"]) for f in group), Decimal(0))}
    return orders


def _running_inventory(orders: list[dict[str, Any]]) -> dict[str, list[Decimal]]:
    """Per symbol, holdings after each order in SPEC section 3 order (buys before sells)."""
    held: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)])
    for order in sorted(orders, key=lambda o: (o["order_time"], o["side"] != "buy",
                                                o["order_id"])):
        change = order["size"] if order["side"] == "buy" else -order["size"]
        held[order["symbol"]].append(held[order["symbol"]][-1] + change)
    return held


def test_the_same_seed_gives_the_same_history(history: DemoHistory) -> None:
    again = demo_history(7)
    assert again.fills == history.fills and again.orders == history.orders
    assert again.missing_buy_ids == history.missing_buy_ids
    assert again.missing_sell_ids == history.missing_sell_ids
    assert demo_history(8).orders != history.orders


def test_orders_look_like_a_bot_history(history: DemoHistory) -> None:
    assert 550 <= len(history.orders) <= 650
    assert {o["symbol"] for o in history.orders} == {"BTC-USD", "ETH-USD", "SOL-USD"}
    assert {o["side"] for o in history.orders} == {"buy", "sell"}
    for order in history.orders:
        assert set(order) == {"order_id", "symbol", "side", "order_time", "price", "size",
                              "total_fees_usd"}
        assert END - timedelta(days=90) <= order["order_time"] < END
        assert order["order_time"].tzinfo is not None
        assert order["price"].as_tuple().exponent == -2 and order["price"] > 0
        assert order["size"].as_tuple().exponent >= -8 and order["size"] > 0
        assert 0 < order["total_fees_usd"] < order["price"] * order["size"] * Decimal("0.01")
    assert len({o["order_id"] for o in history.orders}) == len(history.orders)


def test_fills_have_the_coinbase_shape(history: DemoHistory) -> None:
    per_order: dict[str, int] = defaultdict(int)
    for fill in history.fills:
        assert set(FILL_COLUMNS) <= set(fill)
        assert fill["side"] in ("BUY", "SELL") and isinstance(fill["size_in_quote"], bool)
        for name in ("price", "size", "commission"):
            assert isinstance(fill[name], str) and Decimal(fill[name]) >= 0
        lag = _time(fill["sequence_timestamp"]) - _time(fill["trade_time"])
        assert timedelta(0) < lag < timedelta(milliseconds=10)
        per_order[fill["order_id"]] += 1
    assert set(per_order.values()) == {1, 2, 3}
    assert any(f["size_in_quote"] for f in history.fills)
    assert len({f["entry_id"] for f in history.fills}) == len(history.fills)
    assert len({f["trade_id"] for f in history.fills}) == len(history.fills)


def test_fills_aggregate_back_to_the_orders_exactly(history: DemoHistory) -> None:
    aggregated = _aggregate(history.fills)
    assert aggregated == {o["order_id"]: o for o in history.orders}
    assert any(len({f["price"] for f in history.fills if f["order_id"] == order_id}) > 1
               for order_id in aggregated)


def test_the_exchange_never_sells_what_it_does_not_hold(history: DemoHistory) -> None:
    for symbol, held in _running_inventory(history.orders).items():
        assert min(held) >= 0, symbol


def test_gaps_leave_sells_unmatched(history: DemoHistory) -> None:
    by_id = {o["order_id"]: o for o in history.orders}
    assert len(history.missing_buy_ids) == 5 and len(history.missing_sell_ids) == 2
    assert all(by_id[i]["side"] == "buy" for i in history.missing_buy_ids)
    assert all(by_id[i]["side"] == "sell" for i in history.missing_sell_ids)
    gaps = set(history.missing_buy_ids) | set(history.missing_sell_ids)
    assert [o["order_id"] for o in history.ledger_orders] == [
        o["order_id"] for o in history.orders if o["order_id"] not in gaps]
    ledger = _running_inventory(history.ledger_orders)
    for buy_id in history.missing_buy_ids:
        symbol = by_id[buy_id]["symbol"]
        alone = _running_inventory([o for o in history.orders if o["order_id"] != buy_id])
        assert min(alone[symbol]) < -DUST, f"losing {buy_id} alone should break FIFO"
        assert min(ledger[symbol]) < -DUST, f"{symbol}: the ledger should break FIFO"
