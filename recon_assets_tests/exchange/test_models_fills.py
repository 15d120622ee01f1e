from decimal import Decimal

import pandas as pd
import pytest

from recon_assets.exchange.models import FRAME_COLUMNS, api_time, normalize_fills

FILL = {
    "entry_id": "e-1", "trade_id": "t-1", "order_id": "o-1",
    "trade_time": "2026-03-01T10:00:00.123456Z", "trade_type": "FILL",
    "price": "64000.01", "size": "0.00012345", "commission": "0.0790123456789",
    "product_id": "BTC-USD", "sequence_timestamp": "2026-03-01T10:00:00.223456Z",
    "liquidity_indicator": "TAKER", "size_in_quote": False, "user_id": "u-1", "side": "BUY",
    "retail_portfolio_id": "p-1",
}


def test_good_fill_is_typed_exactly():
    frame, problems = normalize_fills([FILL])
    assert problems == []
    assert list(frame.columns) == FRAME_COLUMNS
    row = frame.iloc[0]
    assert row["price"] == Decimal("64000.01") and isinstance(row["price"], Decimal)
    assert row["commission"] == Decimal("0.0790123456789")
    assert row["trade_time"] == pd.Timestamp("2026-03-01T10:00:00.123456", tz="UTC")
    assert str(frame["sequence_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["size_in_quote"].dtype == bool and not row["size_in_quote"]


@pytest.mark.parametrize("raw, expected", [
    (True, True), (False, False), ("true", True), ("FALSE", False), (" True ", True)])
def test_size_in_quote_accepts_bool_and_text(raw, expected):
    frame, problems = normalize_fills([{**FILL, "size_in_quote": raw}])
    assert problems == [] and bool(frame.iloc[0]["size_in_quote"]) is expected


def test_side_is_read_case_insensitively_and_numbers_may_be_json_numbers():
    frame, problems = normalize_fills([{**FILL, "side": "sell", "price": 0.1, "size": 3}])
    assert problems == []
    assert frame.iloc[0]["side"] == "SELL"
    assert frame.iloc[0]["price"] == Decimal("0.1") and frame.iloc[0]["size"] == Decimal(3)


@pytest.mark.parametrize("change, field, message", [
    ({"order_id": None}, "order_id", "missing"),
    ({"price": ""}, "price", "missing"),
    ({"size": "abc"}, "size", "not a number"),
    ({"size": "0"}, "size", "must be positive"),
    ({"price": "-1"}, "price", "must be positive"),
    ({"price": "NaN"}, "price", "not finite"),
    ({"commission": "-0.01"}, "commission", "must not be negative"),
    ({"size": "1e400"}, "size", "out of range"),
    ({"price": "1E+15"}, "price", "out of range"),
    ({"commission": "1e-31"}, "commission", "more than 30 decimal places"),
    ({"size": 1e300}, "size", "out of range"),
    ({"side": "UNKNOWN_ORDER_SIDE"}, "side", "unknown side"),
    ({"product_id": "BTCUSD"}, "product_id", "not BASE-QUOTE"),
    ({"product_id": "btc-usd"}, "product_id", "not BASE-QUOTE"),
    ({"trade_time": "yesterday"}, "trade_time", "not a time"),
    ({"trade_time": "2300-01-01T00:00:00Z"}, "trade_time", "not a time"),
    ({"size_in_quote": "maybe"}, "size_in_quote", "not a boolean"),
])
def test_bad_fill_is_reported_by_trade_id_and_field_and_kept_out(change, field, message):
    frame, problems = normalize_fills([{**FILL, **change, "trade_id": "bad"},
                                       {**FILL, "trade_id": "good"}])
    assert list(frame["trade_id"]) == ["good"]
    assert len(problems) == 1
    trade_id, got_field, got_message = problems[0]
    assert (trade_id, got_field) == ("bad", field) and message in got_message


def test_missing_key_and_missing_trade_id():
    no_size = {k: v for k, v in FILL.items() if k != "size"}
    frame, problems = normalize_fills([no_size, {**FILL, "trade_id": None}])
    assert frame.empty
    assert problems == [("t-1", "size", "missing"), ("row 1", "trade_id", "missing")]


def test_optional_text_may_be_absent_and_repeated_trade_ids_are_kept():
    slim = {k: v for k, v in FILL.items()
            if k not in ("entry_id", "trade_type", "liquidity_indicator", "user_id")}
    frame, problems = normalize_fills([slim, slim])
    assert problems == [] and list(frame["trade_id"]) == ["t-1", "t-1"]
    assert frame.iloc[0]["entry_id"] is None


def test_empty_input_gives_typed_empty_frame():
    frame, problems = normalize_fills([])
    assert problems == [] and frame.empty and list(frame.columns) == FRAME_COLUMNS
    assert str(frame["trade_time"].dtype) == "datetime64[ns, UTC]"


def test_api_time_is_rfc3339_utc():
    assert api_time(pd.Timestamp("2026-03-01 12:00:00.5+02:00")) == "2026-03-01T10:00:00.500000Z"


@pytest.mark.filterwarnings("error")
def test_nanosecond_times_are_floored_to_microseconds_without_a_warning():
    frame, problems = normalize_fills([{**FILL, "trade_time": "2023-01-18T01:37:38.091377090Z"}])
    assert problems == []
    assert frame.iloc[0]["trade_time"] == pd.Timestamp("2023-01-18T01:37:38.091377", tz="UTC")
    frame["trade_time"].iloc[0].to_pydatetime()
