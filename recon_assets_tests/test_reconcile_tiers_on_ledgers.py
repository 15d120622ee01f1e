"""SPEC section 4 on real ledgers (SQLite, and BotTrader-shaped PostgreSQL), through the CLI:
known buys and sells removed, one row altered, one phantom added."""

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from recon_assets.cli import main
from recon_assets_tests.conftest import seed_trade_records

PHANTOM = {"order_id": "phantom-1", "symbol": "ETH-USD", "side": "buy",
           "order_time": datetime(2026, 10, 1, 12, tzinfo=timezone.utc),
           "price": Decimal("2500.00"), "size": Decimal("0.5"),
           "total_fees_usd": Decimal("1.25")}


@pytest.fixture(params=["sqlite", "bottrader"])
def damaged_ledger(request, monkeypatch, demo_exchange):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite"
                                  else "bottrader_pg_url")
    orders = [dict(o) for o in demo_exchange.history.ledger_orders]
    altered = next(o for o in orders if o["side"] == "sell")
    altered["price"] = altered["price"] + Decimal("1.00")
    seed_trade_records(url, orders + [PHANTOM])
    monkeypatch.setenv("DATABASE_URL", url)
    return altered


def run_json(capsys, *args):
    code = main([*args, "--json", "-q"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_tiers_find_exactly_what_was_damaged(damaged_ledger, demo_exchange, capsys):
    history = demo_exchange.history
    removed = set(history.missing_buy_ids) | set(history.missing_sell_ids)
    truth = {o["order_id"]: o for o in history.orders}

    code, tier3 = run_json(capsys, "reconcile", "--tier", "3")
    assert code == 1
    assert {o["order_id"] for o in tier3["missing_orders"]} == removed
    for o in tier3["missing_orders"]:
        order = truth[o["order_id"]]
        assert (Decimal(o["size"]), Decimal(o["price"]), Decimal(o["fee"])) == (
            order["size"], order["price"], order["total_fees_usd"])
        assert o["side"] == order["side"]
    assert [o["order_id"] for o in tier3["phantom_orders"]] == ["phantom-1"]
    assert [(m["order_id"], m["field"]) for m in tier3["mismatches"]] == [
        (damaged_ledger["order_id"], "price")]
    assert tier3["duplicates"] == []

    code, tier2 = run_json(capsys, "reconcile", "--tier", "2")
    assert code == 1
    assert {o["order_id"] for o in tier2["missing_orders"]} == removed
    assert [o["order_id"] for o in tier2["phantom_orders"]] == ["phantom-1"]

    assert main(["fifo", "-q"]) == 0
    capsys.readouterr()
    code, tier1 = run_json(capsys, "reconcile", "--tier", "1")
    assert code == 1 and tier1["version"] == 1 and tier1["unmatched_sells"]
    found = {o["order_id"] for o in tier1["missing_orders"]}
    assert set(history.missing_buy_ids) <= found <= removed
