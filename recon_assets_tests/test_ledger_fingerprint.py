"""The ledger fingerprint sees every value FIFO reads, on SQLite and on a BotTrader-shaped
PostgreSQL ledger (double-precision money), and is the same in every process.

An order corrected in place (no row added or removed) must change the fingerprint, so the
ledger sensor asks for a recompute and ``only_if_changed`` does not reuse a stale version.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import text

from recon_assets.fifo.service import compute_version
from recon_assets.ledger.fingerprint import _fingerprint, rows_fingerprint
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import seed_trade_records

ORDERS = [
    {"order_id": "b1", "symbol": "BTC-USD", "side": "buy",
     "order_time": datetime(2026, 1, 1, 10, tzinfo=timezone.utc),
     "price": Decimal("100.5"), "size": Decimal("0.3"), "total_fees_usd": None},
    {"order_id": "s1", "symbol": "BTC-USD", "side": "sell",
     "order_time": datetime(2026, 1, 2, 10, tzinfo=timezone.utc),
     "price": Decimal("110"), "size": Decimal("0.2"), "total_fees_usd": Decimal("0.25")},
]
#: field -> (SQL for the corrected value of order b1, on SQLite and on PostgreSQL)
EDITS = {
    "size": ("'0.30000000001'", "0.30000000000000004"),  # one ulp of the double 0.3
    "price": ("'100.50000001'", "100.50000001"),
    "total_fees_usd": ("'0'", "0"),  # NULL (read as 0) -> an explicit 0 is still an edit
    "side": ("'sell'", "'sell'"),
    "symbol": ("'ETH-USD'", "'ETH-USD'"),
    "order_time": ("'2026-01-01 10:00:00.000001'",
                   "order_time + interval '1 microsecond'"),
    "order_id": ("'b1-corrected'", "'b1-corrected'"),
}


@pytest.fixture(params=["sqlite", "bottrader-postgresql"])
def ledger(request) -> LedgerStore:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite"
                                  else "bottrader_pg_url")
    seed_trade_records(url, ORDERS)
    store = LedgerStore(url)
    yield store
    store.dispose()


def _edit(store: LedgerStore, field: str) -> None:
    value = EDITS[field][store.dialect == "postgresql"]
    with store.begin() as conn:
        conn.execute(text(f"UPDATE trade_records SET {field} = {value} WHERE order_id = 'b1'"))


@pytest.mark.parametrize("field", list(EDITS))
def test_an_order_corrected_in_place_changes_the_fingerprint(ledger, field):
    before = str(ledger.fingerprint())
    assert str(ledger.fingerprint()) == before
    _edit(ledger, field)
    after = str(ledger.fingerprint())
    assert after != before, f"editing {field} in place was not seen"
    assert after.split(":")[0] == before.split(":")[0] == "2"  # same row count


def test_only_if_changed_recomputes_after_an_in_place_edit(ledger):
    first = compute_version(ledger)
    assert compute_version(ledger, only_if_changed=True).reused
    _edit(ledger, "size")
    second = compute_version(ledger, only_if_changed=True)
    assert not second.reused and second.version == first.version + 1
    assert second.ledger_fingerprint != first.ledger_fingerprint


def test_an_unchanged_ledger_keeps_its_fingerprint_across_processes(ledger):
    here = str(ledger.fingerprint())
    script = ("import sys; from recon_assets.ledger.store import LedgerStore; "
              "print(LedgerStore(sys.argv[1]).fingerprint())")
    for zone in ("UTC", "America/New_York", "Asia/Kolkata"):  # the session's time zone
        env = {"PGTZ": zone, "TZ": zone, "PYTHONHASHSEED": "random"}
        out = subprocess.run([sys.executable, "-c", script, ledger.url], env=env,
                             capture_output=True, text=True, timeout=120, check=True).stdout
        assert out.strip() == here, zone


#: The fingerprint of ORDERS as recon-assets computed it before per-symbol fingerprints
#: (sensor run keys and stored versions hold these strings, so they must not change).
#: The second pair is after an ETH-USD order and one with a blank symbol are added.
KNOWN = {"sqlite": ("2:ad97e7de200a0b50149d9cb4", "4:15a9990b7ef17dca4579055d"),
         "postgresql": ("2:c089614195381ee00fcbf177", "4:eecf50e915ad2873ac02c88b")}


def test_the_fingerprint_of_a_known_ledger_is_unchanged(ledger):
    one, several = KNOWN[ledger.dialect]
    assert str(ledger.fingerprint()) == one
    with ledger.begin() as conn:
        conn.execute(text("INSERT INTO trade_records (order_id, symbol, side, order_time, price, "
                          "size, total_fees_usd, status, source, trigger) VALUES "
                          "('e1', 'ETH-USD', 'buy', '2026-01-03 10:00:00', 2000, 1.5, 0.1, "
                          "'filled', 'websocket', '{}'), "
                          "('x1', ' ', 'buy', '2026-01-03 11:00:00', 1, 1, 0, "
                          "'filled', 'websocket', '{}')"))
    assert str(ledger.fingerprint()) == several


def test_each_symbol_has_its_own_fingerprint_from_the_same_scan(ledger):
    with ledger.begin() as conn:
        conn.execute(text("INSERT INTO trade_records (order_id, symbol, side, order_time, price, "
                          "size, total_fees_usd, status, source, trigger) VALUES "
                          "('e1', 'ETH-USD ', 'buy', '2026-01-03 10:00:00', 2000, 1.5, 0.1, "
                          "'filled', 'websocket', '{}'), "
                          "('e2', 'ETH-USD', 'sell', '2026-01-04 10:00:00', 2100, 1, 0.1, "
                          "'filled', 'websocket', '{}')"))
    before = ledger.fingerprint()
    assert sorted(before.by_symbol) == ["BTC-USD", "ETH-USD"]  # trimmed, as reads see it
    assert before.by_symbol["ETH-USD"].startswith("2:")
    _edit(ledger, "price")
    after = ledger.fingerprint()
    assert after.by_symbol["ETH-USD"] == before.by_symbol["ETH-USD"]
    assert after.by_symbol["BTC-USD"] != before.by_symbol["BTC-USD"]
    assert str(after) != str(before)


def test_a_read_of_one_symbol_is_fingerprinted_as_the_ledger_fingerprints_it(ledger):
    """A fan-out step reads its symbol with each row's hash: exactly the rows whose trimmed
    symbol it is (padded ones too, not those that merely contain it), with the fingerprint
    the ledger's scan gives that symbol, also for hashes whose sum leaves int64."""
    with ledger.begin() as conn:
        for oid, symbol in [("e1", " ETH-USD"), ("e2", "ETH-USD  "), ("e3", "ETH-USDT"),
                            ("e4", "XETH-USD"), ("e5", "ETH-USD")]:
            conn.execute(text(
                "INSERT INTO trade_records (order_id, symbol, side, order_time, price, size, "
                "total_fees_usd, status, source, trigger) VALUES (:o, :s, 'buy', "
                "'2026-01-03 10:00:00', 2000, 1.5, 0.1, 'filled', 'websocket', '{}')"),
                {"o": oid, "s": symbol})
    read = ledger.read_trades(symbols=["ETH-USD"], fingerprinted=True)
    assert sorted(read.trades["order_id"]) == ["e1", "e2", "e5"]
    assert set(read.trades["symbol"]) == {"ETH-USD"}
    if ledger.dialect == "postgresql":
        assert read.fingerprint == ledger.fingerprint().by_symbol["ETH-USD"]
        both = ledger.read_trades(symbols=["ETH-USD", "BTC-USD"], fingerprinted=True)
        assert sorted(both.trades["order_id"]) == ["b1", "e1", "e2", "e5", "s1"]
    else:
        assert read.fingerprint is None  # no row hash in SQLite: nothing to judge under


def test_row_hashes_sum_exactly_at_the_ends_of_int64():
    hashes = [-2**63, 2**63 - 1, -1, 0, 2**62, -2**62 - 1] * 1000
    expected = str(_fingerprint(len(hashes), sum(hashes), str))
    assert rows_fingerprint(np.array(hashes, dtype=np.int64)) == expected
    assert rows_fingerprint(np.array([], dtype=np.int64)) == str(_fingerprint(0, 0, str))


def test_a_fingerprint_alongside_a_snapshot_is_of_what_the_snapshot_reads(ledger):
    """``database_trades`` and the checks scan the fingerprint on a second connection while
    they read: it must be of the same snapshot, not of the ledger a moment later. An edit
    committed after the snapshot began, while the scan waits behind its lock, stays unseen."""
    before = ledger.fingerprint()
    if ledger.dialect != "postgresql":
        with ledger.snapshot() as conn, ledger.fingerprint_alongside(conn) as fingerprint:
            assert len(ledger.read_trades(conn=conn).trades) == 2
            assert fingerprint() == before
        return
    other = ledger.engine.connect()
    try:
        other.begin()
        other.execute(text("LOCK TABLE trade_records IN ACCESS EXCLUSIVE MODE"))
        other.execute(text("UPDATE trade_records SET size = 0.4 WHERE order_id = 'b1'"))
        with ledger.snapshot() as conn, ledger.fingerprint_alongside(conn) as fingerprint:
            other.commit()  # the edit lands after the snapshot, before the scan can run
            trades = ledger.read_trades(conn=conn).trades
            assert trades.set_index("order_id").loc["b1", "size"] == Decimal("0.3")
            assert fingerprint() == before
    finally:
        other.close()
    assert ledger.fingerprint() != before
    with ledger.fingerprint_alongside() as fingerprint:  # no snapshot: the ledger now
        assert fingerprint() == ledger.fingerprint()
