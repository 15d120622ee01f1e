"""compare_orders: missing, phantom, mismatched and duplicated orders, tolerances and edge cases."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon_assets import diff
from recon_assets.errors import BadRowError
from recon_assets.reconcile.compare import MISMATCH_COLUMNS, Tolerances, compare_orders
from recon_assets.trades import TRADE_COLUMNS, empty_trades

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def order(order_id: str, price: str = "100", size: str = "1", fee: str | None = "0.1", *,
          side: str = "buy", symbol: str = "BTC-USD", hours: int = 0) -> dict:
    return {"order_id": order_id, "symbol": symbol, "side": side,
            "order_time": T0 + pd.Timedelta(hours=hours), "price": Decimal(price),
            "size": Decimal(size), "total_fees_usd": None if fee is None else Decimal(fee)}


def trades(*orders: dict) -> pd.DataFrame:
    return pd.DataFrame(list(orders), columns=TRADE_COLUMNS)


def fields(result) -> list[tuple[str, str]]:
    return list(zip(result.mismatches["order_id"], result.mismatches["field"]))


def test_public_api_is_reexported():
    assert diff.compare_orders is compare_orders and diff.Tolerances is Tolerances


def test_identical_frames_are_clean():
    frame = trades(order("a"), order("b", side="sell"))
    result = compare_orders(frame, frame.iloc[::-1].reset_index(drop=True))
    assert result.is_clean
    assert result.counts() == {"missing_orders": 0, "missing_buys": 0, "phantom_orders": 0,
                               "mismatches": 0, "mismatched_orders": 0, "duplicates": 0}


def test_missing_phantom_and_mismatches():
    exchange = trades(order("a"), order("b", side="sell"), order("c", "200", "2"))
    ledger = trades(order("c", "201", "2.5", side="sell", symbol="ETH-USD"), order("a"),
                    order("z"))
    result = compare_orders(exchange, ledger)
    assert result.missing_orders["order_id"].tolist() == ["b"]
    assert list(result.missing_orders.columns) == TRADE_COLUMNS
    assert result.phantom_orders["order_id"].tolist() == ["z"]
    assert list(result.mismatches.columns) == MISMATCH_COLUMNS
    assert result.mismatches[["field", "exchange_value", "ledger_value"]].values.tolist() == [
        ["side", "buy", "sell"], ["symbol", "BTC-USD", "ETH-USD"],
        ["size", Decimal("2"), Decimal("2.5")], ["price", Decimal("200"), Decimal("201")]]
    assert set(result.mismatches["symbol"]) == {"BTC-USD"}  # the exchange's symbol
    assert result.counts()["mismatched_orders"] == 1 and not result.is_clean


@pytest.mark.parametrize("field, exchange_value, ledger_value, mismatch", [
    ("size", "1", "1.00000001", False),        # exactly the 1e-8 tolerance
    ("size", "1", "1.000000011", True),
    ("fee", "0.1", "0.100001", False),         # exactly 1e-6
    ("fee", "0.1", "0.1000010001", True),
    ("price", "1", "1.00000001", False),       # absolute 1e-8
    ("price", "1", "1.000000011", True),
    ("price", "100000", "100000.001", False),  # relative: 1e-8 * 100000.001 > 0.001
    ("price", "100000", "100000.0011", True),
    ("price", "0.5", "0.5000000100", False),   # trailing zeros are not a difference
])
def test_tolerance_boundaries(field, exchange_value, ledger_value, mismatch):
    column = {"fee": "total_fees_usd"}.get(field, field)
    exchange = trades(order("a"))
    ledger = exchange.copy()
    exchange.loc[0, column] = Decimal(exchange_value)
    ledger.loc[0, column] = Decimal(ledger_value)
    assert (fields(compare_orders(exchange, ledger)) == [("a", field)]) is mismatch


def test_custom_tolerances():
    exchange, ledger = trades(order("a", size="1")), trades(order("a", size="1.001"))
    assert compare_orders(exchange, ledger, Tolerances(size=Decimal("0.01"))).is_clean
    assert fields(compare_orders(exchange, ledger)) == [("a", "size")]


def test_null_fee_is_zero_and_fee_column_optional():
    exchange = trades(order("a", fee="0"))
    assert compare_orders(exchange, trades(order("a", fee=None))).is_clean
    without = trades(order("a", fee="0")).drop(columns="total_fees_usd")
    result = compare_orders(without, trades(order("a", fee="0.5"), order("b")))
    assert fields(result) == [("a", "fee")]
    assert result.phantom_orders["total_fees_usd"].tolist() == [Decimal("0.1")]


def test_empty_frames():
    assert compare_orders(empty_trades(), empty_trades()).is_clean
    one = trades(order("a"), order("b", side="sell"))
    only_exchange = compare_orders(one, empty_trades())
    assert only_exchange.missing_orders["order_id"].tolist() == ["a", "b"]
    assert only_exchange.counts()["missing_buys"] == 1
    assert compare_orders(empty_trades(), one).phantom_orders["order_id"].tolist() == ["a", "b"]


def test_duplicates_on_either_side_are_reported_and_compared_once():
    exchange = trades(order("a"), order("a", "999"), order("b"))
    ledger = trades(order("b"), order("a"), order("b"), order("b"))
    result = compare_orders(exchange, ledger)
    assert result.duplicates[["order_id", "source", "count"]].values.tolist() == [
        ["a", "exchange", 2], ["b", "ledger", 3]]
    assert result.mismatches.empty  # the first "a" row is the one compared
    assert result.missing_orders.empty and result.phantom_orders.empty


def test_missing_columns_and_values_are_named():
    with pytest.raises(BadRowError, match="side"):
        compare_orders(trades(order("a")).drop(columns="side"), trades(order("a")))
    ledger = trades(order("a"))
    ledger.loc[0, "price"] = None
    with pytest.raises(BadRowError) as err:
        compare_orders(trades(order("a")), ledger)
    assert err.value.problems == [("a", "price", "missing")]


def test_decimal_strings_are_accepted_for_api_callers():
    exchange = trades(order("a", "100.5"))
    ledger = exchange.astype({"price": str, "size": str, "total_fees_usd": str})
    ledger.loc[0, "price"] = "100.50"
    assert compare_orders(exchange, ledger).is_clean


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40), st.sets(st.integers(0, 39)), st.sets(st.integers(0, 39)))
def test_missing_and_mismatched_are_exactly_what_was_changed(n, removed, altered):
    exchange = trades(*(order(f"o{i}", str(100 + i), f"0.{i + 1}") for i in range(n)))
    removed, altered = {i for i in removed if i < n}, {i for i in altered if i < n} - removed
    ledger = exchange[~exchange.index.isin(list(removed))].copy()
    ledger.loc[list(altered), "size"] = [s + Decimal("0.001") for s in
                                        ledger.loc[list(altered), "size"]]
    result = compare_orders(exchange, ledger.sample(frac=1, random_state=n))
    assert set(result.missing_orders["order_id"]) == {f"o{i}" for i in removed}
    assert set(fields(result)) == {(f"o{i}", "size") for i in altered}
    assert result.phantom_orders.empty and result.duplicates.empty


def test_benchmark_agrees_with_datacompy_on_a_small_run():
    from benchmarks.diff import run

    result = run(2000, seed=3, repeats=1)
    assert result["compare_orders_found"] == result["datacompy_found"] == {
        "missing_orders": 2, "phantom_orders": 0, "mismatched_orders": 1}
