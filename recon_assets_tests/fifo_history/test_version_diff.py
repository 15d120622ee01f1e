"""diff_versions on allocate's output: known cases by construction, and random histories."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pandas as pd
import pytest

from recon_assets.fifo import allocate
from recon_assets.fifo.version_diff import Lot, diff_versions, to_json, to_markdown
from recon_assets.trades import normalize_trades
from recon_assets_tests.fifo.histories import random_history
from recon_assets_tests.fifo_history.scenarios import BASE, MISSING_B0, MISSING_B2


def _alloc(orders: list[dict]) -> pd.DataFrame:
    return allocate(pd.DataFrame(orders))


def test_backfilled_buy_changes_exactly_the_sell_it_feeds():
    diff = diff_versions(_alloc(BASE), _alloc(BASE + [MISSING_B2]))
    assert [c.sell_order_id for c in diff.changed_sells] == ["s2"]
    change = diff.changed_sells[0]
    assert change.old_lots == (Lot(None, Decimal("0.5")),)
    assert change.new_lots == (Lot("b2", Decimal("0.5")),)
    # 0.5 * 120 - (105 + 0.5/0.5) * 0.5
    assert change.pnl_before == 0 and change.pnl_after == Decimal("7")
    assert diff.newly_matched == ("s2",) and diff.newly_unmatched == ()
    assert diff.causing_orders == ("b2",) and diff.dropped_orders == ()
    assert diff.added_sells == () and diff.removed_sells == ()
    by_symbol = {s.symbol: s.delta for s in diff.symbols}
    assert by_symbol == {"BTC-USD": Decimal("7"), "ETH-USD": 0}
    assert diff.pnl_delta == Decimal("7")


def test_older_backfilled_buy_reshuffles_a_fully_matched_sell():
    diff = diff_versions(_alloc(BASE), _alloc(BASE + [MISSING_B0]))
    assert [c.sell_order_id for c in diff.changed_sells] == ["s3"]
    change = diff.changed_sells[0]
    assert change.old_lots == (Lot("b3", Decimal("0.5")),)
    assert change.new_lots == (Lot("b0", Decimal("0.25")), Lot("b3", Decimal("0.25")))
    assert diff.newly_matched == () and diff.causing_orders == ("b0",)
    assert change.pnl_delta == diff.pnl_delta == Decimal("10")  # 0.25 * (130 - 90)


def test_removing_a_buy_makes_sells_newly_unmatched():
    diff = diff_versions(_alloc(BASE + [MISSING_B2]), _alloc(BASE))
    assert diff.newly_unmatched == ("s2",) and diff.newly_matched == ()
    assert diff.dropped_orders == ("b2",) and diff.causing_orders == ()
    assert diff.pnl_delta == Decimal("-7")


def test_ledger_changes_limit_the_causing_orders():
    new = _alloc(BASE + [MISSING_B2, MISSING_B0])
    assert diff_versions(_alloc(BASE), new).causing_orders == ("b0", "b2")
    assert diff_versions(_alloc(BASE), new, {"b2", "zz"}).causing_orders == ("b2",)
    assert diff_versions(_alloc(BASE), new, set()).causing_orders == ()


def test_same_version_is_an_empty_diff():
    frame = _alloc(BASE)
    diff = diff_versions(frame, frame)
    assert diff.is_empty and diff.pnl_delta == 0 and diff.pnl_before == diff.pnl_after
    empty = diff_versions(frame.iloc[0:0], frame.iloc[0:0])
    assert empty.is_empty and empty.symbols == () and empty.pnl_delta == 0


def test_added_sells_and_symbols_only_in_one_version():
    new = _alloc(BASE + [{**BASE[0], "order_id": "x1", "symbol": "SOL-USD"},
                         {**BASE[1], "order_id": "x2", "symbol": "SOL-USD"}])
    diff = diff_versions(_alloc(BASE), new)
    assert diff.added_sells == ("x2",) and diff.changed_sells == ()
    sol = next(s for s in diff.symbols if s.symbol == "SOL-USD")
    assert sol.before == 0 and sol.delta == sol.after == diff.pnl_delta


def test_decimal_objects_and_arrow_decimals_compare_equal():
    """Stored versions come back as Decimal objects, allocate gives pyarrow decimals."""
    frame = _alloc(BASE)
    as_objects = frame.astype(object).map(lambda v: None if v is pd.NA else v)
    assert diff_versions(frame, as_objects).is_empty


@pytest.mark.parametrize("seed", range(25))
def test_random_backfills(seed):
    rng = random.Random(seed)
    trades = normalize_trades(random_history(rng, 120, symbols=3)).trades
    buys = trades[trades["side"] == "buy"]
    dropped = buys.sample(n=min(4, len(buys)), random_state=seed)
    old = allocate(trades.drop(index=dropped.index))
    new = allocate(trades)
    diff = diff_versions(old, new)

    def pnl(frame: pd.DataFrame) -> Decimal:
        return sum((v for v in frame["pnl_usd"].tolist() if v is not pd.NA), Decimal(0))

    assert diff.pnl_delta == pnl(new) - pnl(old)
    assert sum((s.delta for s in diff.symbols), Decimal(0)) == diff.pnl_delta
    assert set(diff.causing_orders) <= set(dropped["order_id"])
    assert not diff.added_sells and not diff.removed_sells
    # buys that an older backfilled buy relieved of their sells
    assert set(diff.dropped_orders) <= set(buys["order_id"]) - set(dropped["order_id"])
    # a buy only reaches sells at or after it: nothing earlier, nothing in another symbol
    first_dropped = dropped.groupby("symbol")["order_time"].min()
    sell_time = dict(zip(trades["order_id"], trades["order_time"]))
    for change in diff.changed_sells:
        assert change.symbol in first_dropped
        assert sell_time[change.sell_order_id] >= first_dropped[change.symbol]
    changed = {c.sell_order_id for c in diff.changed_sells}
    assert set(diff.newly_matched) <= changed and not diff.newly_unmatched
    for symbol in set(trades["symbol"]) - set(first_dropped.index):
        assert next(s.delta for s in diff.symbols if s.symbol == symbol) == 0


def test_json_and_markdown():
    diff = diff_versions(_alloc(BASE), _alloc(BASE + [MISSING_B2, MISSING_B0]))
    data = json.loads(json.dumps(to_json(diff)))
    assert data["pnl_delta"] == "17.00000000" and data["truncated"] is False
    assert data["counts"]["changed_sells"] == 2 and data["causing_orders"] == ["b0", "b2"]
    lot = data["changed_sells"][0]["new_lots"][0]
    assert lot["buy_order_id"] == "b2" and Decimal(lot["size"]) == Decimal("0.5")
    assert {s["symbol"]: Decimal(s["delta"]) for s in data["symbols"]}["ETH-USD"] == 0
    cut = to_json(diff, limit=1)
    assert cut["truncated"] and len(cut["changed_sells"]) == 1
    assert cut["counts"]["changed_sells"] == 2
    text = to_markdown(diff)
    assert "delta 17.00000000" in text and "| s2 | BTC-USD | UNMATCHED 0.5 | b2 0.50 |" in text
    assert "b0, b2" in text
