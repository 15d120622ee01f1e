"""allocate: SPEC section 3 exactly, checked case by case and against the plain reference FIFO."""

from __future__ import annotations

import random
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon_assets.errors import BadRowError
from recon_assets.fifo import ALLOCATION_COLUMNS, allocate
from recon_assets.trades import normalize_trades
from recon_assets_tests.fifo.histories import START, assert_same_allocations, random_history
from recon_assets_tests.fifo.reference import reference_allocate

D = Decimal


def _order(order_id: str, side: str, minute: int, price: object, size: object,
           fee: object = "0", symbol: str = "BTC-USD") -> dict[str, object]:
    return {"order_id": order_id, "symbol": symbol, "side": side,
            "order_time": START + pd.Timedelta(minutes=minute), "price": price, "size": size,
            "total_fees_usd": fee}


def _allocate(*orders: dict[str, object]) -> pd.DataFrame:
    return allocate(pd.DataFrame(list(orders)))


def _matches_reference(raw: pd.DataFrame) -> None:
    assert_same_allocations(allocate(raw), reference_allocate(normalize_trades(raw).trades))


def test_published_cost_basis_case() -> None:
    result = _allocate(_order("b1", "buy", 0, "268.1", "5"), _order("b2", "buy", 1, "612.45", "15"),
                       _order("b3", "buy", 2, "603.415", "3"), _order("s1", "sell", 3, "700", "8"))
    assert result["buy_order_id"].tolist() == ["b1", "b2"]
    assert result["allocated_size"].tolist() == [D(5), D(3)]
    assert result["cost_basis_usd"].tolist() == [D("1340.5"), D("1837.35")]
    assert sum(result["cost_basis_usd"].tolist()) == D("3177.85")
    assert result["notes"].tolist() == [None, None]


def test_every_amount_follows_the_formulas_and_rounds_once() -> None:
    result = _allocate(_order("b", "buy", 0, "10", "3", fee="1"),
                       _order("s", "sell", 1, "11", "2", fee="0.7"))
    row = result.iloc[0]
    assert row["allocated_size"] == D(2)
    assert row["buy_fees_per_unit"] == D("0.33333333")
    assert row["sell_fees_per_unit"] == D("0.35")
    assert row["cost_basis_usd"] == D("20.66666667")  # (10 + 1/3) * 2
    assert row["proceeds_usd"] == D("22")
    assert row["net_proceeds_usd"] == D("21.3")
    assert row["pnl_usd"] == D("0.63333333")  # 21.3 - 20.666..., not 21.3 - 20.66666667
    assert (row["buy_time"], row["sell_time"]) == (START, START + pd.Timedelta(minutes=1))


def test_half_even_on_exact_ties() -> None:
    result = _allocate(_order("b1", "buy", 0, "0.000000005", "1"),
                       _order("b2", "buy", 0, "0.000000015", "1"),
                       _order("s", "sell", 1, "0.000000025", "2"))
    assert result["cost_basis_usd"].tolist() == [D(0), D("0.00000002")]
    assert result["proceeds_usd"].tolist() == [D("0.00000002"), D("0.00000002")]


def test_same_timestamp_buys_first_then_order_id() -> None:
    result = _allocate(_order("s1", "sell", 5, "2", "1.5"), _order("b-z", "buy", 5, "1", "1"),
                       _order("b-a", "buy", 5, "1", "1"))
    assert result["buy_order_id"].tolist() == ["b-a", "b-z"]
    assert result["allocated_size"].tolist() == [D(1), D("0.5")]


def test_later_buys_never_serve_earlier_sells() -> None:
    result = _allocate(_order("s0", "sell", 0, "5", "1"), _order("b1", "buy", 1, "4", "2"),
                       _order("s1", "sell", 2, "6", "3"), _order("b2", "buy", 3, "4", "9"),
                       _order("s2", "sell", 4, "6", "1"))
    assert result[["sell_order_id", "buy_order_id"]].values.tolist() == [
        ["s0", None], ["s1", "b1"], ["s1", None], ["s2", "b2"]]
    assert result["allocated_size"].tolist() == [D(1), D(2), D(1), D(1)]
    assert result["notes"].tolist() == [
        "UNMATCHED: 1 of 1 not covered by earlier buys", None,
        "UNMATCHED: 1 of 3 not covered by earlier buys", None]
    unmatched = result[result["buy_order_id"].isna()]
    assert unmatched["cost_basis_usd"].isna().all() and unmatched["pnl_usd"].isna().all()
    assert unmatched["buy_time"].isna().all() and unmatched["buy_price"].isna().all()
    assert unmatched["proceeds_usd"].tolist() == [D(5), D(6)]


def test_dust_remainders_leave_no_row() -> None:
    within = _allocate(_order("b", "buy", 0, "1", "1"), _order("s", "sell", 1, "1", "1.00000001"))
    assert within["buy_order_id"].tolist() == ["b"]
    beyond = _allocate(_order("b", "buy", 0, "1", "1"), _order("s", "sell", 1, "1", "1.000000011"))
    assert beyond["notes"].tolist() == [
        None, "UNMATCHED: 0.000000011 of 1.000000011 not covered by earlier buys"]


def test_symbols_are_independent_and_ordered() -> None:
    result = _allocate(_order("e1", "buy", 0, "3", "1", symbol="ETH-USD"),
                       _order("b1", "buy", 1, "9", "1"),
                       _order("e2", "sell", 2, "4", "1", symbol="ETH-USD"),
                       _order("b2", "sell", 3, "8", "2"))
    assert result["symbol"].tolist() == ["BTC-USD", "BTC-USD", "ETH-USD"]
    assert result["buy_order_id"].tolist() == ["b1", None, "e1"]


def test_fee_heavy_trades_go_negative_exactly() -> None:
    result = _allocate(_order("b", "buy", 0, "0.01", "3", fee="7"),
                       _order("s", "sell", 1, "0.02", "3", fee="9.5"))
    row = result.iloc[0]
    assert (row["net_proceeds_usd"], row["pnl_usd"]) == (D("-9.44"), D("-16.47"))


def test_output_columns_and_types() -> None:
    result = _allocate(_order("b", "buy", 0, "1.5", "2"), _order("s", "sell", 1, "2", "3"))
    assert list(result.columns) == ALLOCATION_COLUMNS
    for column in ("allocated_size", "buy_price", "cost_basis_usd", "pnl_usd"):
        assert isinstance(result[column].dtype, pd.ArrowDtype)
        assert pa.types.is_decimal(result[column].dtype.pyarrow_dtype)
        assert all(isinstance(v, Decimal) for v in result[column].dropna().tolist())
    assert str(result["sell_time"].dtype).endswith("UTC]")
    empty = allocate(pd.DataFrame(columns=["order_id", "symbol", "side", "order_time", "price",
                                           "size", "total_fees_usd"]))
    assert list(empty.columns) == ALLOCATION_COLUMNS and empty.empty
    assert [type(t) for t in empty.dtypes] == [type(t) for t in result.dtypes]


def test_input_is_left_alone() -> None:
    raw = random_history(random.Random(3), 30)
    before = raw.copy()
    allocate(raw)
    pd.testing.assert_frame_equal(raw, before)


@pytest.mark.parametrize(("bad", "field"), [
    ({"size": "0"}, "size"), ({"side": "short"}, "side"), ({"price": None}, "price"),
    ({"order_id": "b1"}, "order_id"), ({"total_fees_usd": "1.2.3"}, "total_fees_usd"),
])
def test_bad_rows_raise_naming_order_and_field(bad: dict, field: str) -> None:
    orders = [_order("b1", "buy", 0, "1", "1"), {**_order("s1", "sell", 1, "1", "1"), **bad}]
    with pytest.raises(BadRowError) as caught:
        allocate(pd.DataFrame(orders, dtype=object))
    problems = caught.value.problems
    assert [(p[0], p[1]) for p in problems] == [(bad.get("order_id", "s1"), field)]


@pytest.mark.parametrize("money", ["decimal", "str", "float"])
def test_seeded_histories_match_the_reference(money: str) -> None:
    rng = random.Random(f"fifo-{money}")
    for _ in range(250):
        raw = random_history(rng, rng.randint(1, 40), symbols=rng.randint(1, 3),
                             max_places=rng.choice([2, 8, 12]), money=money)
        _matches_reference(raw)


def test_wide_values_take_the_python_int_path_exactly() -> None:
    """17-digit floats, 20+ places and sizes whose sums overflow int64 are still exact."""
    rng = random.Random("wide")
    for _ in range(60):
        _matches_reference(random_history(rng, rng.randint(1, 30), max_places=18))
    floats = pd.DataFrame([
        _order("b", "buy", 0, 0.1 + 0.2, 12345.678901234567, 1 / 3),
        _order("s", "sell", 1, 61234.56789012345, 1e-9 + 12345.6, 7.123456789012345e-05),
    ])
    _matches_reference(floats)
    huge = pd.DataFrame([_order("b", "buy", 0, "1", "9" * 30 + ".5"),
                         _order("s", "sell", 1, "2", "1" + "0" * 25)])
    _matches_reference(huge)


_SIZES = st.builds(lambda m, k: Decimal(m).scaleb(-k), st.integers(1, 3000), st.integers(0, 10))
_ORDERS = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(0, 5), _SIZES,
                             st.integers(1, 10 ** 6), st.integers(0, 10 ** 4),
                             st.sampled_from(["A-USD", "B-USD"])), min_size=1, max_size=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ORDERS)
def test_hypothesis_histories_match_the_reference(orders: list[tuple]) -> None:
    raw = pd.DataFrame([
        _order(f"o{i % 7}-{i}", side, minute, Decimal(price).scaleb(-2), size,
               Decimal(fee).scaleb(-4), symbol)
        for i, (side, minute, size, price, fee, symbol) in enumerate(orders)])
    _matches_reference(raw)
