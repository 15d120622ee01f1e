"""Fills as Coinbase really sends them, served by the simulator through the real SDK into the
``exchange_fills`` asset on real SQLite and PostgreSQL: derivatives, non-FILL entries,
conflicting reports of one trade."""

from __future__ import annotations

from pathlib import Path

import json
import logging
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import insert

from recon_assets.cli import main
from recon_assets.exchange.assets import exchange_fills
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.resources import ExchangeResource
from recon_assets.settings import load_settings
from recon_assets.exchange.simulator import Simulator
from recon_assets.exchange.models import normalize_fills
from recon_assets.ledger.bulk import clean_row
from recon_assets.ledger.fills import ARCHIVED, read_fills
from recon_assets.ledger.schema import exchange_fills as exchange_fills_table
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets.reconcile.tiers import full_audit

GOOD = demo_history().fills[:30]
#: Times after every demo fill: a fill the next incremental sync fetches.
LATER = {"trade_time": "2030-01-01T00:00:00.000000Z",
         "sequence_timestamp": "2030-01-01T00:00:00.000000Z"}


def like(i: int, **change: object) -> dict:
    """A fill shaped like the ``i``-th demo fill, under its own ids unless ``change`` says."""
    return {**GOOD[i], "trade_id": f"x-{i}", "entry_id": f"x-entry-{i}",
            "order_id": f"x-order-{i}", **change}


@pytest.fixture
def sync(ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Materialize ``exchange_fills`` from a simulator serving the given fills pages."""
    monkeypatch.setenv("DATABASE_URL", ledger_url)

    def run(*fill_sets: list[dict]) -> dg.ExecuteInProcessResult:
        result = None
        for fills in fill_sets:
            with Simulator(fills, tmp_path / "key.json") as simulator:
                monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
                monkeypatch.setenv("COINBASE_KEY_FILE", str(simulator.key_file))
                result = dg.materialize([exchange_fills], instance=instance, resources={
                    "exchange": ExchangeResource.from_settings(load_settings(),
                                                           requests_per_second=1000),
                    "ledger": LedgerResource(database_url=ledger_url)})
        return result

    instance = dg.DagsterInstance.ephemeral()
    run.instance = instance

    return run


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    event = result.get_asset_materialization_events()[0]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def archive(ledger_url: str) -> pd.DataFrame:
    store = LedgerStore(ledger_url)
    try:
        return read_fills(store)
    finally:
        store.dispose()


def test_derivative_fills_are_archived_and_left_out_of_reconciliation(sync, ledger_url):
    perp = like(0, product_id="BTC-PERP-INTX")
    future = like(1, product_id="BIT-31JAN25-CDE")
    result = sync(GOOD + [perp, future])
    assert result.success
    meta = metadata(result)
    assert meta["non_spot_fills"] == 2
    assert meta["non_spot_products"] == "BIT-31JAN25-CDE, BTC-PERP-INTX"
    fills = archive(ledger_url)
    assert {"x-0", "x-1"} <= set(fills["trade_id"])
    orders = aggregate_fills(fills)
    assert not {"x-order-0", "x-order-1"} & set(orders["order_id"])
    assert set(orders["symbol"]) <= {"BTC-USD", "ETH-USD", "SOL-USD"}
    audit = full_audit(orders, orders, fills)
    assert audit.is_clean
    # One derivative fill no longer wedges the sync: a later one still moves.
    later = sync(GOOD + [perp, future, like(2, product_id="ETH-PERP-INTX", **LATER)])
    assert metadata(later)["new_fills"] == 1 and metadata(later)["non_spot_fills"] == 3


def warnings(sync, result: dg.ExecuteInProcessResult) -> list[str]:
    """The run's log messages at WARNING or above."""
    return [r.user_message for r in sync.instance.all_logs(result.run_id)
            if r.level >= logging.WARNING]


def test_conflicting_reports_of_a_trade_are_kept_reported_and_fail_the_check(sync, ledger_url):
    first = sync(GOOD + [like(3)])
    assert checks(first)["check_exchange_fills_no_conflicts"].passed
    # Next sync: the overlap re-reads x-3 unchanged and with nanoseconds (no conflict), the
    # exchange reports x-4 twice on one page with two sizes, and x-3 again with another size.
    nano = like(3, trade_time=GOOD[3]["trade_time"].replace("Z", "090Z"))
    other = like(3, size="9.5", **LATER)
    twice = [like(4, **LATER), like(4, size="0.125", **LATER)]
    result = sync(GOOD + [like(3), nano, other, *twice])
    check = checks(result)["check_exchange_fills_no_conflicts"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["conflicting_trade_ids"].value == 2
    fills = archive(ledger_url)
    versions = fills[fills["trade_id"].isin(["x-3", "x-4"])]
    assert len(versions) == 4 and versions["conflicting"].sum() == 2
    assert set(versions[versions["conflicting"]]["size"]) == {Decimal("9.5"), Decimal("0.125")}
    orders = aggregate_fills(fills).set_index("order_id")
    assert orders.loc["x-order-3", "size"] == Decimal(GOOD[3]["size"])  # the first report
    audit = full_audit(orders.reset_index(), orders.reset_index(), fills)
    flagged = audit.duplicates[audit.duplicates["source"] == "fills"]
    assert sorted(flagged["order_id"]) == ["x-order-3", "x-order-4"]
    assert flagged["detail"].str.contains("different values").all()
    assert any("2 new conflicting reports" in w and "x-3" in w for w in warnings(sync, result))
    assert metadata(result)["conflicting_reports"] == 2
    again = sync(GOOD + [like(3), nano, other, *twice])  # re-read: nothing new
    assert len(archive(ledger_url)) == len(fills)
    assert not checks(again)["check_exchange_fills_no_conflicts"].passed


def test_non_fill_entries_are_archived_never_counted_and_surfaced(sync, ledger_url):
    fill = like(5)
    reversal = like(5, entry_id="x-rev-5", trade_type="REVERSAL", size="-" + GOOD[5]["size"])
    correction = like(6, trade_type="CORRECTION")
    synthetic = like(7, trade_type="SYNTHETIC")
    result = sync(GOOD + [fill, reversal, correction, synthetic])
    assert result.success
    check = checks(result)["check_exchange_fills_only_fills"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["orders"].value == "x-order-5, x-order-6, x-order-7"
    assert checks(result)["check_exchange_fills_no_conflicts"].passed  # x-5's reversal too
    assert any("3 new non-FILL entries" in w for w in warnings(sync, result))
    assert metadata(result)["non_fill_entries"] == 3
    fills = archive(ledger_url)
    assert len(fills[fills["trade_id"] == "x-5"]) == 2
    orders = aggregate_fills(fills)
    by_id = orders.set_index("order_id")
    assert by_id.loc["x-order-5", "size"] == Decimal(GOOD[5]["size"])  # not doubled, not 0
    assert not {"x-order-6", "x-order-7"} & set(orders["order_id"])
    audit = full_audit(orders, orders, fills)
    entries = audit.mismatches[audit.mismatches["field"] == "trade_type"]
    assert sorted(entries["order_id"]) == ["x-order-5", "x-order-6", "x-order-7"]
    assert entries["exchange_value"].str.contains("x-rev-5").any()
    assert not audit.is_clean


def test_a_reversal_archived_by_an_older_version_is_still_not_counted(sync, ledger_url):
    """Archives synced before entries were kept apart hold them in ``exchange_fills``."""
    sync(GOOD)
    old, _ = normalize_fills([like(8, trade_type="REVERSAL")])
    store = LedgerStore(ledger_url)
    with store.begin() as conn:
        conn.execute(insert(exchange_fills_table), [clean_row(
            {**row, "fetched_at": pd.Timestamp.now(tz="UTC")})
            for row in old[ARCHIVED].to_dict("records")])
    store.dispose()
    result = sync(GOOD)
    assert not checks(result)["check_exchange_fills_only_fills"].passed
    assert not any("non-FILL" in w for w in warnings(sync, result))  # not new
    assert "x-order-8" not in set(aggregate_fills(archive(ledger_url))["order_id"])


def test_tier_3_through_the_cli_reports_conflicts_and_entries_and_backfills_neither(
        sqlite_url, tmp_path, monkeypatch, capsys):
    """``recon-assets reconcile --tier 3 --auto-backfill --json`` over such an archive: the
    conflict is a duplicate, each entry a ``trade_type`` mismatch, and the backfilled orders
    have the first report's size (never a reversal's, never a derivative)."""
    LedgerStore(sqlite_url).ensure_schema()
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    fills = [like(0), like(0, size="7", **LATER), like(1),
             like(1, entry_id="x-rev-1", trade_type="REVERSAL"),
             like(2, product_id="BTC-PERP-INTX")]
    with Simulator(fills, tmp_path / "key.json") as simulator:
        monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(simulator.key_file))
        # a conflict and a reversal are findings: sync exits 1 and says what it kept apart
        assert main(["sync", "-q"]) == 1
        synced = capsys.readouterr().out
        assert "Synced 3 new fills from 127.0.0.1 key " in synced, synced  # not the entry
        assert ("kept for review: 1 non-FILL entries (exchange_fill_entries), 1 conflicting "
                "reports (exchange_fill_conflicts)") in synced
        assert "FAIL  check_exchange_fills_no_conflicts" in synced
        assert "FAIL  check_exchange_fills_only_fills" in synced
        assert main(["reconcile", "--tier", "3", "--auto-backfill", "--json", "-q"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [d["order_id"] for d in report["duplicates"]] == ["x-order-0"]
    assert [(m["order_id"], m["field"]) for m in report["mismatches"]] == [
        ("x-order-1", "trade_type")]
    missing = {o["order_id"]: o for o in report["missing_orders"]}
    assert set(missing) == {"x-order-0", "x-order-1"}
    assert Decimal(missing["x-order-0"]["size"]) == Decimal(GOOD[0]["size"])
    assert Decimal(missing["x-order-1"]["size"]) == Decimal(GOOD[1]["size"])
