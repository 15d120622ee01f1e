"""Open lots as of a time: hand cases, and the demo history in real ledgers."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from recon_assets.fifo import allocate
from recon_assets.fifo.inventory import inventory, inventory_totals, lot_cost
from recon_assets.fifo.service import load_version, resolve_version
from recon_assets_tests.fifo_history.scenarios import BASE, DAY0, MISSING_B2, demo_backfill


def test_lot_cost_is_exact_then_rounded_half_even():
    assert lot_cost(Decimal("1"), Decimal("3"), Decimal("1"), Decimal("1")) == \
        Decimal("1.33333333")
    # (0 + 0.000000025 / 1) * 1 = 2.5e-8: half-even to 2e-8, 3.5e-8 to 4e-8
    assert lot_cost(Decimal(0), Decimal(1), Decimal("0.000000025"), Decimal(1)) == \
        Decimal("0.00000002")
    assert lot_cost(Decimal(0), Decimal(1), Decimal("0.000000035"), Decimal(1)) == \
        Decimal("0.00000004")


def test_lots_as_of_times():
    trades = pd.DataFrame(BASE + [MISSING_B2])
    allocations = allocate(trades)
    day = lambda d: DAY0 + pd.Timedelta(days=d)  # noqa: E731
    at_1 = inventory(trades, allocations, day(1))
    assert at_1[["buy_order_id", "remaining_size"]].values.tolist() == [
        ["b1", Decimal("1")], ["e1", Decimal("2")]]
    assert at_1["remaining_cost_basis_usd"].tolist() == [Decimal("101"), Decimal("20.02")]
    at_3 = inventory(trades, allocations, day(3))  # s1 took b1, e2 took half of e1
    assert at_3[["buy_order_id", "remaining_size"]].values.tolist() == [
        ["b2", Decimal("0.5")], ["e1", Decimal("1")]]
    assert at_3["remaining_cost_basis_usd"].tolist() == [Decimal("53"), Decimal("10.01")]
    end = inventory(trades, allocations)
    assert end[["buy_order_id", "remaining_size"]].values.tolist() == [
        ["b3", Decimal("0.5")], ["e1", Decimal("1")]]
    naive = inventory(trades, allocations, pd.Timestamp("2024-01-04"))  # naive = UTC
    assert naive["buy_order_id"].tolist() == at_3["buy_order_id"].tolist()
    totals = inventory_totals(end)
    assert totals.values.tolist() == [["BTC-USD", 1, Decimal("0.5"), Decimal("65")],
                                      ["ETH-USD", 1, Decimal("1"), Decimal("10.01")]]


def test_over_allocated_buy_shows_negative():
    trades = pd.DataFrame(BASE)
    allocations = allocate(trades).astype(object)
    allocations.loc[allocations["buy_order_id"] == "b1", "allocated_size"] = Decimal("1.5")
    lots = inventory(trades, allocations)
    assert lots.loc[lots["buy_order_id"] == "b1", "remaining_size"].tolist() == [
        Decimal("-0.5")]


def test_empty_inputs():
    trades = pd.DataFrame(BASE[:1])
    lots = inventory(trades, allocate(trades).iloc[0:0], DAY0)
    assert lots.empty and inventory_totals(lots).empty


@pytest.mark.parametrize("version", [1, 2])
def test_inventory_at_the_end_is_buys_minus_allocated_sizes(ledger_url, version):
    history = demo_backfill(ledger_url)
    store = history.store()
    allocations, trades = load_version(store, resolve_version(store, version))
    if version == 1:  # the ledger now has the backfilled buys: version 1 never saw them
        trades = trades[~trades["order_id"].isin(history.missing_ids)]
    lots = inventory(trades, allocations)
    matched = allocations[allocations["buy_order_id"].notna()]
    taken = matched.groupby("buy_order_id")["allocated_size"].sum().to_dict()
    buys = trades[trades["side"] == "buy"]
    expected = {b: s - taken.get(b, 0) for b, s in zip(buys["order_id"], buys["size"])}
    assert dict(zip(lots["buy_order_id"], lots["remaining_size"])) == {
        b: r for b, r in expected.items() if r != 0}
    assert (lots["remaining_size"] > 0).all()  # a valid version never over-allocates
    per_symbol = inventory_totals(lots).set_index("symbol")["remaining_size"].to_dict()
    sold = matched.groupby("symbol")["allocated_size"].sum().to_dict()
    bought = buys.groupby("symbol")["size"].sum().to_dict()
    assert per_symbol == {s: bought[s] - sold.get(s, 0) for s in bought
                          if bought[s] - sold.get(s, 0) != 0}
