"""Tiers 2 and 3 judge only the span the fills archive covers: a first install whose archive
starts weeks after the bot's first order (exchange retention) reports no phantom orders."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import select

from recon_assets.ledger.fills import archive_fills
from recon_assets.ledger.schema import reconciliation_runs
from recon_assets.ledger.store import LedgerStore
from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets.reconcile.service import run_tier
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.reconcile.history import START, bot_fills


def no_exchange():
    raise AssertionError("tiers 2 and 3 read the fills archive, not the exchange")


@pytest.fixture
def first_install(ledger_url):
    """The bot's whole history in the ledger (plus one phantom after the archive starts);
    the archive holds only the orders since day 4, as a first sync after retention would."""
    fills = bot_fills(7)
    orders = aggregate_fills(fills)
    cutoff = START + pd.Timedelta(days=4)
    kept = orders.loc[orders["order_time"] >= cutoff, "order_id"]
    phantom = orders[orders["order_time"] >= cutoff].iloc[[0]].assign(
        order_id="phantom-1", size=Decimal("0.25"))
    ledger = pd.concat([orders, phantom], ignore_index=True)
    seed_trade_records(ledger_url, [{**o, "order_time": o["order_time"].to_pydatetime()}
                                    for o in ledger.to_dict("records")])
    store = LedgerStore(ledger_url)
    archived = fills[fills["order_id"].isin(kept)]
    with store.begin() as conn:
        archive_fills(conn, archived)
    yield store, archived, int((orders["order_time"] < cutoff).sum())
    store.dispose()


@pytest.mark.parametrize("tier", [2, 3])
def test_orders_before_the_archive_are_not_phantom(first_install, tmp_path, tier):
    store, archived, before = first_install
    outcome = run_tier(store, no_exchange, tier=tier, logs_dir=tmp_path / "logs")
    assert outcome.diff.phantom_orders["order_id"].tolist() == ["phantom-1"]
    assert outcome.diff.missing_orders.empty
    first, last = archived["trade_time"].min(), archived["trade_time"].max()
    assert outcome.window == (first, last) and outcome.outside_window == before > 0
    assert f"Judged span: {first.isoformat()} to {last.isoformat()}" in outcome.lines[1]
    assert f"{before} ledger orders outside it not judged" in outcome.lines[1]
    with store.connect() as conn:
        start, end = conn.execute(select(reconciliation_runs.c.window_start,
                                         reconciliation_runs.c.window_end)).one()
    assert (pd.Timestamp(start), pd.Timestamp(end)) == (first, last)
    assert set(outcome.findings()) == {"tier", "version", "missing_orders", "unmatched_sells",
                                       "mismatches", "phantom_orders", "duplicates"}


@pytest.mark.parametrize("tier", [2, 3])
def test_an_empty_archive_proves_nothing_phantom(ledger_url, tmp_path, tier):
    orders = aggregate_fills(bot_fills(8))
    seed_trade_records(ledger_url, [{**o, "order_time": o["order_time"].to_pydatetime()}
                                    for o in orders.to_dict("records")])
    store = LedgerStore(ledger_url)
    outcome = run_tier(store, no_exchange, tier=tier, logs_dir=tmp_path / "logs")
    assert outcome.diff.is_clean and outcome.window is None
    assert outcome.lines[1].startswith("Judged span: none (the fills archive is empty")
    with store.connect() as conn:
        assert conn.execute(select(reconciliation_runs.c.window_start)).scalar() is None
    store.dispose()


def test_the_asset_metadata_says_which_span_was_judged(demo_exchange, sqlite_url,
                                                        monkeypatch):
    from recon_assets.cli.runner import run_job
    from recon_assets.ledger.fills import read_fills

    seed_trade_records(sqlite_url, demo_exchange.history.ledger_orders)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    meta = run_job("reconcile_job", {"missing_orders": {"tier": "2"}},
                   level="WARNING").metadata("missing_orders")
    store = LedgerStore(sqlite_url)
    times = read_fills(store)["trade_time"]
    store.dispose()
    assert (meta["window_start"], meta["window_end"]) == (times.min().timestamp(),
                                                          times.max().timestamp())
    assert meta["ledger_orders_outside_window"] == 0  # the demo's archive covers its ledger
