"""The three tiers on a generated history with known gaps, an altered row and a phantom."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets.reconcile.compare import compare_orders
from recon_assets.reconcile.tiers import (count_buckets, differing_buckets, drill_down,
                                          full_audit, report_lines, tier1_missing,
                                          tier1_windows)
from recon_assets.trades import empty_trades
from recon_assets_tests.reconcile.history import (START, bot_fills, damaged_ledger,
                                                  unmatched_sells)

SEEDS = [1, 2, 3]


@pytest.fixture(params=SEEDS)
def history(request):
    fills = bot_fills(request.param)
    orders = aggregate_fills(fills)
    return fills, orders, damaged_ledger(orders, request.param)


def ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["order_id"])


def test_full_audit_reports_exactly_the_damage(history):
    fills, orders, damage = history
    repeated = pd.concat([fills, fills.iloc[[5]]], ignore_index=True)  # one fill sent twice
    result = full_audit(orders, damage.ledger, fills=repeated)
    assert ids(result.missing_orders) == damage.removed
    assert ids(result.phantom_orders) == {damage.phantom}
    assert list(zip(result.mismatches["order_id"], result.mismatches["field"])) == [
        (damage.altered, "price")]
    assert result.duplicates[["order_id", "source", "count"]].values.tolist() == [
        [fills.loc[5, "order_id"], "fills", 2]]
    lines = report_lines(result, 3)
    assert f"Missing BUY orders found: {len(damage.removed_buys)}" in lines
    assert "Phantom orders (in the ledger, not on the exchange): 1" in lines


def test_full_audit_window_limits_orders_and_fills(history):
    fills, orders, damage = history
    window = (START, START + pd.Timedelta(days=3))
    result = full_audit(orders, damage.ledger, fills=fills, window=window)
    inside = orders[(orders["order_time"] >= window[0]) & (orders["order_time"] <= window[1])]
    assert ids(result.missing_orders) == damage.removed & ids(inside)
    assert result.phantom_orders.empty  # the phantom is dated before the window
    assert result.duplicates.empty


def test_tier1_finds_the_missing_orders_behind_unmatched_sells(history):
    _, orders, damage = history
    unmatched = unmatched_sells(damage.ledger)
    windows = tier1_windows(unmatched)
    assert set(windows) == set(unmatched["symbol"])
    result = tier1_missing(orders, damage.ledger, windows)
    found = ids(result.missing_orders)
    assert found <= damage.removed  # nothing that is not missing
    affected = {oid for oid in damage.removed_buys if oid.split("-")[0] + "-USD" in windows}
    assert affected and affected <= found  # every removed buy that broke FIFO
    assert result.phantom_orders.empty and result.mismatches.empty
    buys = int((result.missing_orders["side"] == "buy").sum())
    assert f"Missing BUY orders found: {buys}" in report_lines(result, 1)


def test_tier1_windows_span_lookback_before_first_to_last_sell():
    t = pd.Timestamp("2024-06-10 12:00", tz="UTC")
    unmatched = pd.DataFrame({"symbol": ["BTC-USD", "BTC-USD", "ETH-USD"],
                              "sell_time": [t, t + pd.Timedelta(days=2), t]})
    windows = tier1_windows(unmatched, lookback=timedelta(days=7))
    assert windows == {"BTC-USD": (t - pd.Timedelta(days=7), t + pd.Timedelta(days=2)),
                       "ETH-USD": (t - pd.Timedelta(days=7), t)}
    assert tier1_windows(unmatched.iloc[:0]) == {}


def test_tier1_ignores_orders_outside_the_windows(history):
    _, orders, damage = history
    assert tier1_missing(orders, damage.ledger, {}).missing_orders.empty


def test_tier2_drills_down_to_exactly_the_removed_orders(history):
    _, orders, damage = history
    buckets = differing_buckets(count_buckets(orders), count_buckets(damage.ledger))
    result = drill_down(orders, damage.ledger, buckets)
    assert ids(result.missing_orders) == damage.removed
    assert ids(result.phantom_orders) == {damage.phantom}
    assert ids(result.mismatches) <= {damage.altered}
    assert len(buckets) <= len(damage.removed) + 1


def test_count_buckets_count_and_sum_exactly():
    t = pd.Timestamp("2024-01-01 23:00", tz="UTC")
    frame = pd.DataFrame({
        "order_id": ["a", "b", "c", "d"], "symbol": ["X-USD"] * 4,
        "side": ["buy", "buy", "buy", "sell"],
        "order_time": [t, t + pd.Timedelta(minutes=30), t + pd.Timedelta(hours=2), t],
        "price": [Decimal(1)] * 4,
        "size": [Decimal("0.1"), Decimal("0.2"), Decimal("5"), Decimal("1")],
        "total_fees_usd": [Decimal(0)] * 4})
    buckets = count_buckets(frame)
    assert buckets.values.tolist() == [
        ["X-USD", date(2024, 1, 1), "buy", 2, Decimal("0.3")],
        ["X-USD", date(2024, 1, 1), "sell", 1, Decimal("1")],
        ["X-USD", date(2024, 1, 2), "buy", 1, Decimal("5")]]
    same = differing_buckets(buckets, count_buckets(frame))
    assert same.empty
    rounded = frame.assign(size=[Decimal("0.1"), Decimal("0.20000001"), Decimal("5"),
                                 Decimal("1.1")])
    differs = differing_buckets(buckets, count_buckets(rounded))
    assert differs.values.tolist() == [
        ["X-USD", date(2024, 1, 1), "sell", 1, 1, Decimal("1"), Decimal("1.1")]]
    only_ledger = differing_buckets(count_buckets(frame.iloc[:0]), buckets)
    assert only_ledger["exchange_count"].tolist() == [0, 0, 0]
    assert only_ledger["exchange_size_sum"].tolist() == [Decimal(0)] * 3


def test_empty_inputs_are_clean():
    empty = count_buckets(empty_trades())
    assert differing_buckets(empty, empty).empty
    assert drill_down(empty_trades(), empty_trades(), differing_buckets(empty, empty)).is_clean
    assert full_audit(empty_trades(), empty_trades()).is_clean


def test_report_lines_for_a_clean_run():
    clean = compare_orders(aggregate_fills(bot_fills(1)), aggregate_fills(bot_fills(1)))
    lines = report_lines(clean, 2)
    assert lines[0] == "Tier 2 reconciliation: clean"
    assert "Missing BUY orders found: 0" in lines and "Duplicates: 0" in lines


def test_report_lines_are_limited():
    orders = aggregate_fills(bot_fills(1))
    lines = report_lines(compare_orders(orders, orders.iloc[:0]), 3, limit=5)
    assert sum(line.startswith("  MISSING") for line in lines) == 5
    assert lines[-1] == f"  ... and {len(orders) - 5} more missing rows"
