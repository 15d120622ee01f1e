"""plan_new_version on real SQLite and PostgreSQL ledgers: a new version only when the ledger
changed since the newest version of the same scope, or when forced."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from recon_assets.errors import ConfigError
from recon_assets.fifo.service import compute_version, plan_new_version
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records


def order(order_id, symbol, side, day, size, price):
    return {"order_id": order_id, "symbol": symbol, "side": side,
            "order_time": datetime(2026, 1, day, tzinfo=timezone.utc),
            "size": Decimal(size), "price": Decimal(price), "total_fees_usd": Decimal("0")}


def test_plan_new_version_follows_ledger_and_scope(ledger_url):
    seed_trade_records(ledger_url, [order("b1", "BTC-USD", "buy", 1, "1", "100"),
                                    order("s1", "BTC-USD", "sell", 2, "1", "110"),
                                    order("e1", "ETH-USD", "buy", 1, "2", "10")])
    store = LedgerStore(ledger_url)
    empty = plan_new_version(store)
    assert (empty.version, empty.unchanged_since) == (1, None)

    compute_version(store)
    same = plan_new_version(store)
    assert same.version == 1 and same.unchanged_since is not None
    assert same.unchanged_since.version == 1
    forced = plan_new_version(store, force=True)
    assert (forced.version, forced.unchanged_since) == (2, None)
    # Another scope (only BTC) has no version yet, whatever the whole-ledger version says.
    assert plan_new_version(store, symbols=["BTC-USD"]).unchanged_since is None

    compute_version(store, symbols=["BTC-USD"])
    assert plan_new_version(store, symbols=["BTC-USD"]).unchanged_since.version == 2
    assert plan_new_version(store).unchanged_since.version == 1

    with store.begin() as conn:
        conn.execute(text("UPDATE trade_records SET size = '0.5' WHERE order_id = 's1'"))
    changed = plan_new_version(store)
    assert (changed.version, changed.unchanged_since) == (3, None)


def test_plan_new_version_refuses_an_unknown_symbol(sqlite_url):
    seed_trade_records(sqlite_url, [order("b1", "BTC-USD", "buy", 1, "1", "100")])
    with pytest.raises(ConfigError, match="DOGE-USD"):
        plan_new_version(LedgerStore(sqlite_url), symbols=["DOGE-USD"])


def test_the_write_logs_its_total_as_a_plain_decimal(ledger_url):
    """A break-even version's total is 0 at 8 places: the log says 0.00000000, as the CLI
    prints it, not Decimal's 0E-8."""
    seed_trade_records(ledger_url, [order("b1", "BTC-USD", "buy", 1, "0.5", "100"),
                                    order("s1", "BTC-USD", "sell", 2, "0.5", "100")])
    said: list[str] = []
    summary = compute_version(LedgerStore(ledger_url), log=said.append)
    assert summary.total_pnl_usd == 0
    (line,) = [m for m in said if m.startswith("wrote FIFO version")]
    assert "total PnL 0.00000000" in line, line
