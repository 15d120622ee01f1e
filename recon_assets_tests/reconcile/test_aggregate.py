"""aggregate_fills and find_duplicate_fills: exact orders from partial, quote-sized and repeated fills."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon_assets.errors import BadRowError
from recon_assets.exchange.models import FILL_COLUMNS
from recon_assets.reconcile.aggregate import aggregate_fills, find_duplicate_fills
from recon_assets.trades import TRADE_COLUMNS

T0 = pd.Timestamp("2024-03-01 12:00", tz="UTC")


def fill(trade_id: str, order_id: str, price: str, size: str, commission: str = "0", *,
         seconds: int = 0, quote: bool = False, side: str = "BUY",
         product: str = "BTC-USD") -> dict:
    return {"entry_id": f"e-{trade_id}", "trade_id": trade_id, "order_id": order_id,
            "trade_time": T0 + pd.Timedelta(seconds=seconds), "trade_type": "FILL",
            "price": Decimal(price), "size": Decimal(size), "commission": Decimal(commission),
            "product_id": product, "sequence_timestamp": T0 + pd.Timedelta(seconds=seconds),
            "liquidity_indicator": "TAKER", "size_in_quote": quote, "user_id": "u",
            "side": side}


def frame(*fills: dict) -> pd.DataFrame:
    return pd.DataFrame(list(fills), columns=FILL_COLUMNS)


def only(orders: pd.DataFrame, order_id: str) -> dict:
    return orders.set_index("order_id").loc[order_id].to_dict()


def test_partial_fills_sum_sizes_weight_prices_and_add_fees():
    orders = aggregate_fills(frame(
        fill("t2", "o1", "101", "0.3", "0.15", seconds=5),
        fill("t1", "o1", "100", "0.2", "0.10", seconds=1),
        fill("t3", "o1", "102.5", "0.5", "0.25", seconds=9)))
    assert list(orders.columns) == TRADE_COLUMNS
    row = only(orders, "o1")
    assert row["size"] == Decimal("1.0")
    # (100*0.2 + 101*0.3 + 102.5*0.5) / 1.0 = 101.55
    assert row["price"] == Decimal("101.55")
    assert row["total_fees_usd"] == Decimal("0.50")
    assert row["order_time"] == T0 + pd.Timedelta(seconds=1)  # first fill, not first row
    assert (row["symbol"], row["side"]) == ("BTC-USD", "buy")


def test_size_in_quote_fills_are_converted_to_base_exactly():
    orders = aggregate_fills(frame(
        fill("t1", "o1", "50000", "100", "0.6", quote=True),  # 100 USD at 50000 = 0.002 BTC
        fill("t2", "o1", "40000", "0.001", "0.2", seconds=1)))
    row = only(orders, "o1")
    assert row["size"] == Decimal("0.003")
    # (50000*0.002 + 40000*0.001) / 0.003 = 140 / 0.003 = 46666.66...
    assert row["price"] == Decimal("46666.666666666666666667")
    assert row["total_fees_usd"] == Decimal("0.8")


def test_non_terminating_quotients_round_half_even_at_18_places():
    orders = aggregate_fills(frame(fill("t1", "o1", "3", "1", quote=True)))
    row = only(orders, "o1")
    assert row["size"] == Decimal("0.333333333333333333")
    assert row["price"] == Decimal("3")  # one fill gives back its own price


def test_trailing_zeros_are_not_invented():
    row = only(aggregate_fills(frame(fill("t1", "o1", "100.10", "2", quote=False))), "o1")
    assert str(row["price"]) == "100.1" and str(row["size"]) == "2"


def test_a_repeated_trade_id_counts_once():
    orders = aggregate_fills(frame(
        fill("t1", "o1", "100", "1", "1"), fill("t1", "o1", "100", "1", "1"),
        fill("t2", "o1", "100", "1", "1", seconds=1)))
    row = only(orders, "o1")
    assert (row["size"], row["total_fees_usd"]) == (Decimal("2"), Decimal("2"))


def test_orders_are_separate_and_sells_lowercase():
    orders = aggregate_fills(frame(
        fill("t1", "o1", "100", "1", seconds=10),
        fill("t2", "o2", "10", "5", side="SELL", product="ETH-USD")))
    assert orders["order_id"].tolist() == ["o2", "o1"]  # by order_time
    assert only(orders, "o2")["side"] == "sell" and only(orders, "o2")["symbol"] == "ETH-USD"


def test_empty_fills_give_an_empty_trades_frame():
    orders = aggregate_fills(frame())
    assert orders.empty and list(orders.columns) == TRADE_COLUMNS


def test_unusable_fills_are_named():
    with pytest.raises(BadRowError) as err:
        aggregate_fills(frame(fill("t1", "o1", "0", "1"), fill("t2", "o2", "1", "1"),
                              fill("t3", "o2", "1", "1", side="SELL")))
    found = {(p[0], p[1]) for p in err.value.problems}
    assert found == {("t1", "price"), ("t3", "side")}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(1, 10**8), st.booleans()),
                min_size=1, max_size=8))
def test_aggregate_matches_exact_decimal_arithmetic(parts):
    """Against a plain Decimal computation at 60 digits (rounding only the quotients)."""
    fills = [fill(f"t{i}", "o", str(Decimal(p).scaleb(-2)), str(Decimal(s).scaleb(-8)),
                  seconds=i, quote=q) for i, (p, s, q) in enumerate(parts)]
    row = only(aggregate_fills(frame(*fills)), "o")
    q18 = Decimal("1e-18")
    bases = [(f["size"] / f["price"]).quantize(q18) if f["size_in_quote"] else f["size"]
             for f in fills]
    assert row["size"] == sum(bases)
    expected = sum(f["price"] * b for f, b in zip(fills, bases)) / sum(bases)
    assert row["price"] == expected.quantize(q18)


def test_find_duplicate_fills_reports_repeats_and_identical_executions():
    found = find_duplicate_fills(frame(
        fill("t1", "o1", "100", "1"), fill("t1", "o1", "100", "1"),  # same trade id twice
        fill("t2", "o2", "100", "1"), fill("t3", "o2", "100.0", "1"),  # booked twice
        fill("t4", "o2", "100", "1", seconds=1),  # another time: a real second fill
        fill("t5", "o3", "100", "1", quote=True), fill("t6", "o3", "100", "1")))  # units differ
    assert found[["trade_id", "duplicate_kind", "duplicate_of"]].values.tolist() == [
        ["t1", "trade_id", "t1"], ["t1", "trade_id", "t1"],
        ["t2", "content", "t2"], ["t3", "content", "t2"]]
    assert set(FILL_COLUMNS) <= set(found.columns)


def test_find_duplicate_fills_is_empty_for_clean_fills():
    assert find_duplicate_fills(frame(fill("t1", "o1", "1", "1"),
                                      fill("t2", "o1", "1", "1", seconds=1))).empty
