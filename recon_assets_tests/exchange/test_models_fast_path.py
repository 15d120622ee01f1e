"""``normalize_fills`` screens whole pages at once; its answer must be the per-row checker's.

The reference below is ``normalize_fills`` as it was before the screen: every record through
``_check_record`` (the one place that words problems), the usable ones into ``fills_frame``.
Whatever a page holds (canonical Coinbase text, JSON numbers, odd case and spacing,
nanoseconds, offsets, impossible dates, signs, non-FILL entries, missing keys, non-objects),
both give the same frame, value for value and decimal scale for scale, and the same problems
in the same order.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon_assets.exchange.client import _parsed_by_arrow
from recon_assets.exchange.models import (_check_record, fills_frame, normalize_arrow,
                                          normalize_fills)
from recon_assets.exchange.sync import _normalized

BASE: dict[str, Any] = {
    "entry_id": "e-1", "trade_id": "t-1", "order_id": "o-1",
    "trade_time": "2026-03-01T10:00:00.123456Z", "trade_type": "FILL",
    "price": "64000.01", "size": "0.00012345", "commission": "0.0790123456789",
    "product_id": "BTC-USD", "sequence_timestamp": "2026-03-01T10:00:00.223456Z",
    "liquidity_indicator": "TAKER", "size_in_quote": False, "user_id": "u-1", "side": "BUY",
}
MISSING = object()  # the key is left out
TEXT = ["x", " x ", "", "   ", None, 7, "\u00a0", "é", "\u00a0y"]
AMOUNTS = ["1", "0.10", "64000.01", "000123.4500", "0", "0.000", "-1", "-0", "+1", " 2.5 ",
           "1e5", "1E+15", "999999999999999", "1000000000000000", "1_000", ".5", "5.", "NaN",
           "Infinity", "abc", "", None, 0.1, 3, 1e300, True, Decimal("2.50"),
           "0." + "0" * 29 + "1", "0." + "0" * 30 + "1", "1." + "0" * 31]
TIMES = ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00.5Z", "2023-01-18T01:37:38.091377090Z",
         "2026-03-01T10:00:00.123456+00:00", "2026-03-01T12:00:00+02:00", "2026-02-30T00:00:00Z",
         "2026-03-01T24:00:00Z", "2026-03-01 10:00:00", "1969-12-31T23:59:59.9999999Z",
         "2199-12-31T23:59:59Z", "2300-01-01T00:00:00Z", "yesterday", "", None, 1700000000]
CHOICES: dict[str, list[Any]] = {
    "entry_id": TEXT, "trade_id": ["t-1", "t-2", " t-3 ", "", None, 4],
    "order_id": TEXT, "trade_type": ["FILL", "fill", "REVERSAL", "CORRECTION", "SYNTHETIC",
                                     None, "", " "],
    "price": AMOUNTS, "size": AMOUNTS, "commission": AMOUNTS,
    "product_id": ["BTC-USD", "BTC-PERP-INTX", "BIT-31JAN25-CDE", "btc-usd", "BTCUSD",
                   "BTC-USD\n", " BTC-USD", "", None, 5],
    "trade_time": TIMES, "sequence_timestamp": TIMES,
    "liquidity_indicator": TEXT, "size_in_quote": [True, False, "true", " FALSE ", "maybe",
                                                   0, 1, None, ""],
    "user_id": TEXT, "side": ["BUY", "SELL", "buy", " Sell ", "UNKNOWN_ORDER_SIDE", "", None, 1],
}


def per_row(records: list[Any]) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    rows, problems = [], []
    for i, record in enumerate(records):
        row, row_problems = _check_record(i, record)
        problems.extend(row_problems)
        if row is not None and not row_problems:
            rows.append(row)
    return fills_frame(rows), problems


def assert_same(records: list[Any]) -> None:
    frame, problems = normalize_fills(records)
    want_frame, want_problems = per_row(records)
    assert problems == want_problems
    pd.testing.assert_frame_equal(frame, want_frame)
    for column in ("price", "size", "commission"):  # equal by value is not enough: scale too
        assert [v.as_tuple() for v in frame[column]] == [v.as_tuple() for v in want_frame[column]]
        assert all(type(v) is Decimal for v in frame[column])


def record(changes: dict[str, Any]) -> dict[str, Any]:
    out = {**BASE, **changes}
    return {k: v for k, v in out.items() if v is not MISSING}


fields = st.sampled_from(sorted(CHOICES))
mutated = st.dictionaries(fields, st.none(), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries(
        {k: st.sampled_from([*CHOICES[k], MISSING]) for k in keys}))
records = st.one_of(mutated.map(record), st.just(BASE), st.sampled_from([None, "fill", 3]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=12))
def test_a_page_is_typed_and_refused_exactly_as_row_by_row(page):
    assert_same(page)


def test_every_single_odd_value_alone():
    for field, values in CHOICES.items():
        assert_same([record({field: value}) for value in [*values, MISSING]])


def test_a_plain_page_is_typed_without_the_per_row_checker(monkeypatch):
    """A page as Coinbase sends it never reaches ``_check_fill``: that is the point."""
    import recon_assets.exchange.models as models

    def refuse(*_args: Any) -> None:
        raise AssertionError("a plain fill went through the per-row checker")

    page = [{**BASE, "trade_id": f"t-{i}", "price": f"{i + 1}.50",
             "trade_time": f"2026-03-01T10:00:{i % 60:02d}.12345678{i % 10}Z"}
            for i in range(500)]
    want = per_row(page)
    monkeypatch.setattr(models, "_check_fill", refuse)
    frame, problems = normalize_fills(page)
    assert problems == []
    pd.testing.assert_frame_equal(frame, want[0])
    assert frame["price"].iloc[0] == Decimal("1.50") and str(frame["price"].iloc[0]) == "1.50"


def arrow_path(body: bytes) -> tuple[pd.DataFrame, list[tuple[str, str, str]]] | None:
    """What a sync makes of an answer when Arrow's JSON reader takes it (``None``: it does
    not, and the page goes through ``normalize_fills`` as dicts)."""
    answer = _parsed_by_arrow(body)
    if answer is None:
        return None
    page = answer.page
    assert page.items == (json.loads(body).get("fills") or [])  # decoded only when asked
    assert page.count == len(page.items)
    return _normalized(page)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=12))
def test_an_answer_read_by_arrow_gives_what_its_dicts_give(page):
    """Whatever the answer holds, the Arrow route and the dicts give the same frame and
    problems: Arrow's columns are used only for pages whose every fill is plain."""
    body = json.dumps({"fills": page, "cursor": "c"}, default=str).encode()
    got = arrow_path(body)
    if got is not None:
        want_frame, want_problems = normalize_fills(json.loads(body)["fills"])
        assert got[1] == want_problems
        pd.testing.assert_frame_equal(got[0], want_frame)
        for column in ("price", "size", "commission"):
            assert [v.as_tuple() for v in got[0][column]] == [
                v.as_tuple() for v in want_frame[column]]


def test_a_plain_answer_is_read_from_arrow_columns(monkeypatch):
    """A page as Coinbase sends it is screened from Arrow's columns, never as dicts."""
    import recon_assets.exchange.models as models

    page = [{**BASE, "trade_id": f"t-{i}", "price": f"{i + 1}.50",
             "trade_time": f"2026-03-01T10:00:{i % 60:02d}.12345678{i % 10}Z"}
            for i in range(500)]
    body = json.dumps({"fills": page, "cursor": "next", "has_next": True}).encode()
    answer = _parsed_by_arrow(body)
    assert answer is not None and (answer.page.cursor, answer.has_next) == ("next", True)
    want = per_row(page)
    monkeypatch.setattr(models, "_record_columns", lambda *_: pytest.fail("read as dicts"))
    frame = normalize_arrow(answer.page.arrow)
    pd.testing.assert_frame_equal(frame, want[0])
    assert str(frame["price"].iloc[0]) == "1.50"


@pytest.mark.parametrize("body", [
    b'{"fills": [{"trade_id": "a", "price": "1"}, {"trade_id": "b", "price": 2}]}',
    b'{"fills": [1, {"trade_id": "a"}]}', b'{"fills": [{"a": "1", "a": "2"}]}',
    b'{"fills": []}', b'{"fills": [], "cursor": 5}', b'{"fills": []}\n{"fills": []}',
    b'{"fills": [{"trade_id": "a"}]} and more', b"", b"not json"])
def test_an_unusual_answer_is_left_to_json(body):
    """Mixed JSON types in a field, non-objects, repeated keys, a numeric cursor, two
    documents, trailing text: not read by Arrow, so ``json`` and the per-row checks judge
    it as before (and a body that is no JSON is retried as one cut off)."""
    assert _parsed_by_arrow(body) is None
