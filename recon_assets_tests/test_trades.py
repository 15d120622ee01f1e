"""normalize_trades: exact values, every bad row named by order id and field, in row order.

The vectorized column checks must agree with the row checker on every row, whatever mixture
of types a column holds; a hypothesis test feeds both the same messy rows.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon_assets.errors import BadRowError
from recon_assets.money import EXACT
from recon_assets.scaled import scale_arrow, try_scale_decimals
from recon_assets.trades import (TRADE_COLUMNS, _check_row, empty_trades, normalize_trades,
                                 normalize_trades_scaled, trade_arrays)


def _row(order_id: object = "o1", **overrides: object) -> dict[str, object]:
    row = {"order_id": order_id, "symbol": "BTC-USD", "side": "buy",
           "order_time": pd.Timestamp("2024-01-01 10:00", tz="UTC"),
           "price": Decimal("100"), "size": Decimal("1"), "total_fees_usd": Decimal("0.1")}
    row.update(overrides)
    return row


def test_clean_rows_come_back_exact_and_normalized() -> None:
    raw = pd.DataFrame([
        _row("a", side=" SELL ", symbol=" ETH-USD ", price="2.50", size=0.1,
             total_fees_usd=None, order_time="2024-01-01T10:00:00"),
        _row("b", price=0.1 + 0.2, size=Decimal("1E-8"), total_fees_usd="-0.01",
             order_time=pd.Timestamp("2024-01-01 12:00", tz="US/Eastern")),
    ])
    result = normalize_trades(raw)
    assert result.problems == []
    trades = result.trades
    assert list(trades.columns) == TRADE_COLUMNS
    assert trades["side"].tolist() == ["sell", "buy"]
    assert trades["symbol"].tolist() == ["ETH-USD", "BTC-USD"]
    assert trades["price"].tolist() == [Decimal("2.50"), Decimal("0.30000000000000004")]
    assert trades["size"].tolist() == [Decimal("0.1"), Decimal("1E-8")]
    assert trades["total_fees_usd"].tolist() == [Decimal(0), Decimal("-0.01")]
    assert trades["order_time"].tolist() == [pd.Timestamp("2024-01-01 10:00", tz="UTC"),
                                             pd.Timestamp("2024-01-01 17:00", tz="UTC")]


def test_float_columns_read_by_shortest_representation() -> None:
    values = [0.1, 1e-7, 2.675, 123456.789, 1 / 3, 100.0]
    raw = pd.DataFrame([_row(f"o{i}", price=v, size=v, total_fees_usd=v)
                        for i, v in enumerate(values)])
    trades = normalize_trades(raw).raise_if_bad()
    for column in ("price", "size", "total_fees_usd"):
        assert [str(d) for d in trades[column]] == [str(Decimal(repr(v))) for v in values]


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"side": "hold"}, "side", "unknown side 'hold' (want buy or sell)"),
    ({"side": None}, "side", "unknown side None (want buy or sell)"),
    ({"symbol": "  "}, "symbol", "missing or not text: '  '"),
    ({"order_time": None}, "order_time", "missing"),
    ({"order_time": "yesterday-ish"}, "order_time", "not a time: 'yesterday-ish'"),
    ({"price": None}, "price", "missing"),
    ({"price": float("nan")}, "price", "missing"),
    ({"price": "12,5"}, "price", "not a number: '12,5'"),
    ({"size": Decimal(0)}, "size", "must be positive, got 0"),
    ({"size": "-1"}, "size", "must be positive, got -1"),
    ({"total_fees_usd": float("inf")}, "total_fees_usd", "not finite: inf"),
    ({"price": Decimal("NaN")}, "price", "missing"),
    ({"price": Decimal("Infinity")}, "price", "not finite: Infinity"),
    ({"order_time": 1700000000}, "order_time",
     "a number, not a time: 1700000000 (store an ISO 8601 time)"),
    ({"order_time": 1.7e9}, "order_time",
     "a number, not a time: 1700000000.0 (store an ISO 8601 time)"),
    ({"price": Decimal("1e15")}, "price",
     "out of range: 1E+15 (magnitude must stay below 1e15)"),
    ({"total_fees_usd": -1e16}, "total_fees_usd",
     "out of range: -1E+16 (magnitude must stay below 1e15)"),
    ({"size": "1e-31"}, "size", "out of range: 1E-31 (more than 30 decimal places)"),
    ({"size": 1.5e-30}, "size", "out of range: 1.5E-30 (more than 30 decimal places)"),
])
def test_each_bad_field_is_named(overrides: dict, field: str, message: str) -> None:
    raw = pd.DataFrame([_row("good"), _row("bad", **overrides)], dtype=object)
    result = normalize_trades(raw, plausible=True)  # as the ledger gateway reads rows
    assert result.problems == [("bad", field, message)]
    assert result.trades["order_id"].tolist() == ["good"]
    with pytest.raises(BadRowError) as caught:
        result.raise_if_bad()
    assert f"bad: {field}: {message}" in str(caught.value)


@pytest.mark.parametrize("column", [
    pd.Series([1700000000, 1700000060], dtype="int64"),
    pd.Series([Decimal("1e15"), Decimal("1")], dtype=object),
    pd.Series([1e16, 1.0], dtype="float64"),
    pd.Series(["1e-40", "1"], dtype=object),
])
def test_typed_columns_never_let_an_impossible_value_through(column: pd.Series) -> None:
    """A whole column of one dtype takes the vectorized path: numbers as times, values of a
    quadrillion or more and values with more than 30 places still reach the row checker,
    and trailing zeros are not places."""
    field = "order_time" if column.dtype == "int64" else "size"
    raw = pd.DataFrame([_row("bad"), _row("other")]).assign(**{field: column})
    for normalize in (normalize_trades, normalize_trades_scaled):
        problems = normalize(raw, plausible=True).problems
        assert [p[:2] for p in problems][:1] == [("bad", field)], problems
        # the pure API (plausible=False) is exact for any finite value; a number is never a time
        pure = normalize(raw).problems
        assert pure == (problems if field == "order_time" else []), pure
    zeros = pd.DataFrame([_row("a", size=Decimal("1." + "0" * 40))])
    assert normalize_trades(zeros, plausible=True).problems == []


def test_duplicates_missing_ids_and_row_order() -> None:
    raw = pd.DataFrame([
        _row("x", side="nope"), _row("dup"), _row(None, price="abc"), _row("dup"),
        _row("y"),
    ])
    result = normalize_trades(raw)
    assert result.problems == [
        ("x", "side", "unknown side 'nope' (want buy or sell)"),
        ("dup", "order_id", "duplicate order id"),
        ("row 2", "order_id", "missing"),
        ("row 2", "price", "not a number: 'abc'"),
    ]
    assert result.trades["order_id"].tolist() == ["y"]
    assert result.bad_order_ids == ["dup", "row 2", "x"]


def test_decimal_string_columns() -> None:
    raw = pd.DataFrame([_row("a", price=" 1.50 ", size="2", total_fees_usd="0"),
                        _row("b", price="1e-3", size="0.5", total_fees_usd=None)])
    trades = normalize_trades(raw).raise_if_bad()
    assert trades["price"].tolist() == [Decimal("1.50"), Decimal("0.001")]
    assert trades["total_fees_usd"].tolist() == [Decimal(0), Decimal(0)]
    bad = pd.DataFrame([_row("a", price="2"), _row("b", price="two"), _row("c", price="NaN")])
    assert normalize_trades(bad).problems == [("b", "price", "not a number: 'two'"),
                                              ("c", "price", "not finite: 'NaN'")]


def test_empty_and_missing_columns() -> None:
    assert normalize_trades(empty_trades()).trades.empty
    with pytest.raises(BadRowError, match="price: column missing"):
        normalize_trades(pd.DataFrame({c: [] for c in TRADE_COLUMNS if c != "price"}))
    no_fees = pd.DataFrame([_row("a")]).drop(columns="total_fees_usd")
    assert normalize_trades(no_fees).trades["total_fees_usd"].tolist() == [Decimal(0)]


def test_typed_columns_from_a_database_driver() -> None:
    n = 2_000
    raw = pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)],
        "symbol": ["BTC-USD", "ETH-USD"] * (n // 2),
        "side": ["buy", "SELL"] * (n // 2),
        "order_time": pd.date_range("2024-01-01", periods=n, freq="min"),  # naive: UTC
        "price": np.round(np.linspace(1, 1000, n), 2),
        "size": np.linspace(0.001, 2, n),
        "total_fees_usd": [None, 0.5] * (n // 2),
    })
    trades = normalize_trades(raw).raise_if_bad()
    assert len(trades) == n
    assert trades["order_time"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert trades["price"].tolist() == [Decimal(repr(v)) for v in raw["price"]]
    assert trades["total_fees_usd"].iloc[:2].tolist() == [Decimal(0), Decimal("0.5")]


_CELLS = {
    "order_id": st.sampled_from(["a", "b", "c", "", None, 7, float("nan")]),
    "symbol": st.sampled_from(["BTC-USD", " ETH-USD", "", None, 3]),
    "side": st.sampled_from(["buy", "Sell", " BUY ", "hold", None, 1]),
    "order_time": st.sampled_from(["2024-01-02T03:04:05Z", "2024-01-02", None, "soon",
                                   pd.Timestamp("2024-05-01 10:00"), float("nan")]),
}
_MONEY = st.sampled_from([Decimal("1.5"), Decimal("-2"), Decimal(0), Decimal("NaN"),
                          Decimal("-Infinity"), "2.25", " 3 ", "", "x", 0.1, -0.5,
                          float("nan"), float("inf"), None, 4])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({**_CELLS, "price": _MONEY, "size": _MONEY,
                                       "total_fees_usd": _MONEY}), min_size=1, max_size=8))
def test_vectorized_checks_agree_with_the_row_checker(rows: list[dict]) -> None:
    raw = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    result = normalize_trades(raw)
    rows = raw.to_dict("records")  # as the frame holds them (pandas may turn None into nan)
    ids = ["" if v is None or (isinstance(v, float) and v != v) else str(v)
           for v in (r["order_id"] for r in rows)]
    duplicated = {i for i in ids if i and ids.count(i) > 1}
    expected_problems, expected_rows = [], []
    for pos, (oid, row) in enumerate(zip(ids, rows)):
        if oid in duplicated:
            if ids.index(oid) == pos:
                expected_problems.append((oid, "order_id", "duplicate order id"))
            continue
        problems, values = _check_row(oid, pos, row)
        expected_problems.extend(problems)
        if not problems:
            expected_rows.append({"order_id": oid, **values})
    assert result.problems == expected_problems
    got = result.trades.to_dict("records")
    assert len(got) == len(expected_rows)
    for g, e in zip(got, expected_rows):
        assert g == e
        assert [str(g[c]) for c in ("price", "size", "total_fees_usd")] == \
            [str(e[c]) for c in ("price", "size", "total_fees_usd")]


def _decimal_values(signs: st.SearchStrategy[int]) -> st.SearchStrategy[Decimal]:
    """Decimals of up to 14 digits (leading digit non-zero), mostly within 18 places."""
    return st.builds(lambda first, rest, exponent, sign: Decimal((sign, (first, *rest), exponent)),
                     st.integers(1, 9), st.lists(st.integers(0, 9), max_size=13),
                     st.integers(-20, 4), signs)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "order_id": st.text("abc", min_size=1, max_size=3),
    "symbol": st.sampled_from(["BTC-USD", " ETH-USD", "ETH-USD ", "ADA-USD"]),
    "side": st.sampled_from(["buy", "sell", "SELL"]),
    "price": _decimal_values(st.just(0)), "size": _decimal_values(st.just(0)),
    "total_fees_usd": _decimal_values(st.integers(0, 1)),
}), min_size=1, max_size=12))
def test_fifo_arrays_are_the_frame_exactly(rows: list[dict]) -> None:
    """The integer forms normalization keeps for FIFO (money read straight at one common
    number of places when a sample allows, symbol and side codes) say what the frame says."""
    raw = pd.DataFrame([{**r, "order_time": "2024-01-01"} for r in rows])
    result = normalize_trades_scaled(raw)
    if result.arrays is None:  # a bad row, or a value the fast paths refuse
        return
    trades, arrays = result.trades, result.arrays
    fresh = trade_arrays(trades)
    for column in ("price", "size", "total_fees_usd"):
        for value, scaled in ((trades[column].tolist(), arrays.money[column]),
                              (trades[column].tolist(), fresh.money[column])):
            assert [Decimal(int(m)).scaleb(-int(k), context=EXACT)
                    for m, k in zip(scaled.mantissa, scaled.places)] == value
    assert arrays.symbol_names[arrays.symbol_codes].tolist() == trades["symbol"].tolist()
    assert arrays.symbol_names.tolist() == sorted(set(trades["symbol"]))
    assert arrays.is_sell.tolist() == (trades["side"] == "sell").tolist()


def test_a_value_the_sample_misses_still_reads_exactly() -> None:
    """One value with more places than the sampled ones sends the column to the value-by-value
    split; a column of sells alone still reads as sells."""
    values = [Decimal("1.25")] * 5000
    values[1] = Decimal("0.000000000123")
    scaled = try_scale_decimals(np.array(values, dtype=object))
    assert scaled is not None
    assert [Decimal(int(m)).scaleb(-int(k), context=EXACT)
            for m, k in zip(scaled.mantissa[:3], scaled.places[:3])] == values[:3]
    raw = pd.DataFrame([_row(f"s{i}", side="sell") for i in range(3)])
    assert normalize_trades_scaled(raw).arrays.is_sell.tolist() == [True, True, True]


def test_a_signalling_nan_is_a_bad_value_not_a_crash() -> None:
    raw = pd.DataFrame([_row("a"), _row("b", price=Decimal("sNaN"))])
    result = normalize_trades_scaled(raw)
    assert [p[:2] for p in result.problems] == [("b", "price")]
    assert try_scale_decimals(np.array([Decimal("1"), Decimal("sNaN")], dtype=object)) is None


def _same_scaled(got: object, want: object) -> None:
    """Two :class:`Scaled` (or Nones) hold the same integers and places, in the same dtype."""
    assert (got is None) == (want is None), (got, want)
    if got is not None:
        assert got.mantissa.dtype == want.mantissa.dtype
        assert got.mantissa.tolist() == want.mantissa.tolist()
        assert got.places.tolist() == want.places.tolist()


def _money_frame(values: list[object] | pd.Series, column: str = "size") -> pd.DataFrame:
    rows = [_row(f"o{i}", side="buy" if i % 2 else "sell") for i in range(len(values))]
    return pd.DataFrame(rows).assign(**{column: pd.Series(values)})


def _expect_like_decimals(raw: pd.DataFrame, decimals: list[Decimal], column: str) -> None:
    """``normalize_trades_scaled`` of ``raw`` says what it says of the same values given as
    the Decimals ``decimals``: the same problems, values and integers."""
    as_decimals = raw.assign(**{column: pd.Series(decimals, dtype=object)})
    for plausible in (False, True):
        got = normalize_trades_scaled(raw, plausible=plausible)
        want = normalize_trades_scaled(as_decimals, plausible=plausible)
        assert got.problems == want.problems
        assert got.trades[column].tolist() == want.trades[column].tolist()
        assert (got.arrays is None) == (want.arrays is None)
        if got.arrays is not None:
            for name in ("price", "size", "total_fees_usd"):
                _same_scaled(got.arrays.money[name], want.arrays.money[name])
            assert got.arrays.written(column, np.arange(len(raw))) == decimals


_HARD_FLOATS = [0.1, 1e-7, 5e-324, 1e22, 9007199254740993.0, 0.30000000000000004,
                1.2345678901234567, 0.12345678901234568, 123456789012345.67, -0.0, 1e16,
                1e15, 2.5e-5, 1.7976931348623157e308, 2.2250738585072014e-308, 100.0, 1e-13,
                9.999999999999999e-14]


@pytest.mark.parametrize("hard", _HARD_FLOATS)
def test_float_columns_read_as_their_shortest_repr(hard: float) -> None:
    """A float64 column (read without a Decimal per value) reads exactly as the Decimals of
    its values' reprs would: the same integers at the same places, or the same refusals."""
    values = [1.25, hard, 0.5] + [0.001 * k for k in range(1, 40)]
    raw = _money_frame(values)
    _expect_like_decimals(raw, [Decimal(repr(v)) for v in values], "size")
    fees = _money_frame(values, "total_fees_usd")
    _expect_like_decimals(fees, [Decimal(repr(v)) for v in values], "total_fees_usd")


@pytest.mark.parametrize("bad, message", [(float("nan"), "missing"),
                                          (float("inf"), "not finite: inf"),
                                          (-1.5, "must be positive, got -1.5"),
                                          (0.0, "must be positive, got 0.0")])
def test_bad_floats_are_refused_with_row_and_field(bad: float, message: str) -> None:
    raw = _money_frame([1.5, bad, 2.0])
    for normalize in (normalize_trades, normalize_trades_scaled):
        result = normalize(raw)
        assert result.problems == [("o1", "size", message)]
        assert result.trades["order_id"].tolist() == ["o0", "o2"]
        assert result.trades["size"].tolist() == [Decimal("1.5"), Decimal("2.0")]


@pytest.mark.parametrize("text", ["1.50", "0.00000001", "1e-3", "+2", ".5", "5.", "-0",
                                  "12345678901234567", "1E+2", "0.1000000000000000000001",
                                  "1e-57", "123456789012345678901234567890"])
def test_string_columns_read_as_their_decimals(text: str) -> None:
    values = ["1.25", text, "0.5"] + [f"0.{k:03d}" for k in range(1, 40)]
    _expect_like_decimals(_money_frame(values, "total_fees_usd"),
                          [Decimal(v) for v in values], "total_fees_usd")


@pytest.mark.parametrize("bad, message", [(" 1.5 ", None), ("1_000", None),
                                          ("abc", "not a number: 'abc'"),
                                          ("NaN", "not finite: 'NaN'"),
                                          ("-Infinity", "not finite: '-Infinity'"),
                                          ("", "missing"), ("-2", "must be positive, got -2")])
def test_odd_strings_take_the_careful_path(bad: str, message: str | None) -> None:
    """Blanks and underscores (which ``Decimal`` reads and pyarrow does not) still read as
    Decimal reads them; bad strings are refused with their row and field."""
    raw = _money_frame(["1.5", bad, "2"])
    for normalize in (normalize_trades, normalize_trades_scaled):
        result = normalize(raw)
        if message is None:
            assert result.problems == []
            assert result.trades["size"].tolist() == [Decimal("1.5"), Decimal(bad), 2]
        else:
            assert result.problems == [("o1", "size", message)]


def _short_floats() -> st.SearchStrategy[float]:
    """Floats like money: a few digits, a few places."""
    return st.builds(lambda units, places: units / 10 ** places,
                     st.integers(-10 ** 12, 10 ** 12), st.integers(0, 12))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_short_floats(), st.floats(allow_nan=False, allow_infinity=False),
                          st.sampled_from(_HARD_FLOATS)), min_size=1, max_size=30),
       st.sampled_from(["price", "size", "total_fees_usd"]))
def test_float_fast_path_is_decimal_of_repr(values: list[float], column: str) -> None:
    _expect_like_decimals(_money_frame(values, column), [Decimal(repr(v)) for v in values],
                          column)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=10),
                          st.decimals(allow_nan=False, allow_infinity=False)).map(str)
                | st.sampled_from(["1e5", "-0.0", "+1.5", ".25", "7."]),
                min_size=1, max_size=30),
       st.sampled_from(["price", "size", "total_fees_usd"]))
def test_string_fast_path_is_decimal_of_text(values: list[str], column: str) -> None:
    _expect_like_decimals(_money_frame(values, column), [Decimal(v) for v in values], column)


def test_typed_columns_take_the_fast_path() -> None:
    """Floats, decimal strings and Arrow decimals become the integers with no Decimal made,
    so the frame holds an Arrow decimal column of the same values. Strings and floats take
    the places the Decimals would; an Arrow column is split from its own integers."""
    values = [Decimal("1.25"), Decimal("0.5"), Decimal("3")]
    arrow = pd.Series(values, dtype=pd.ArrowDtype(pa.decimal128(10, 2)))
    for given_values, expected in (
            ([1.25, 0.5, 3.0], try_scale_decimals(np.array(values))),
            (["1.25", "0.50", "3"], try_scale_decimals(np.array(values))),
            (arrow, scale_arrow(pa.array(arrow.array)))):
        result = normalize_trades_scaled(_money_frame(given_values))
        assert isinstance(result.trades["size"].dtype, pd.ArrowDtype)
        assert result.trades["size"].tolist() == values
        _same_scaled(result.arrays.money["size"], expected)
