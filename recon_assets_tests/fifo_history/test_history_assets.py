"""fifo_version_diff materialized against real ledgers (SQLite and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
import pytest
from sqlalchemy import text

from recon_assets.cli.commands import report_checks
from recon_assets.cli.runner import JobOutcome
from recon_assets.errors import EXIT_CLEAN, VersionError
from recon_assets.fifo.history_assets import EXPLAINED_CHECK, fifo_version_diff, pick_versions
from recon_assets.fifo.service import compute_version
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import run_version_partition, seed_trade_records
from recon_assets_tests.fifo_history.scenarios import BASE, demo_backfill


def _materialize(url: str, version: int) -> dg.ExecuteInProcessResult:
    return run_version_partition([fifo_version_diff], version, resources={
        "ledger": LedgerResource(database_url=url)}, raise_on_error=False)


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_pick_versions():
    assert pick_versions([1, 2, 3], None, None) == (2, 3)
    assert pick_versions([1, 2, 3], None, 2) == (1, 2)
    assert pick_versions([1, 3], 3, 1) == (3, 1)
    assert pick_versions([1], None, None) == (None, 1)
    with pytest.raises(VersionError, match="no FIFO version"):
        pick_versions([], None, None)
    with pytest.raises(VersionError, match="version 4 does not exist"):
        pick_versions([1, 2], None, 4)


def test_backfill_diff_names_the_sells_and_the_backfilled_buys(ledger_url):
    history = demo_backfill(ledger_url)
    result = _materialize(ledger_url, 2)
    assert result.success
    meta = _metadata(result)
    diff = meta["diff"]
    assert (meta["old_version"], meta["new_version"]) == (1, 2)
    delta = history.after.total_pnl_usd - history.before.total_pnl_usd
    assert Decimal(meta["pnl_delta_usd_exact"]) == Decimal(diff["pnl_delta"]) == delta
    assert sum(Decimal(s["delta"]) for s in diff["symbols"]) == delta
    for s in diff["symbols"]:
        assert Decimal(s["after"]) == history.after.pnl_by_symbol.get(s["symbol"], 0)
        assert Decimal(s["before"]) == history.before.pnl_by_symbol.get(s["symbol"], 0)
    # the backfilled buys that feed a sell are named as the cause, and nothing else is new
    assert diff["causing_orders"] and set(diff["causing_orders"]) <= history.missing_ids
    assert diff["newly_matched"] and meta["newly_unmatched"] == 0
    # a buy only reaches sells of its symbol at or after it
    first = {}
    for o in history.missing:
        first[o["symbol"]] = min(first.get(o["symbol"], o["order_time"]), o["order_time"])
    times = {o["order_id"]: o["order_time"] for o in history.orders}
    assert meta["changed_sells"] == len(diff["changed_sells"]) > 0
    for change in diff["changed_sells"]:
        assert times[change["sell_order_id"]] >= first[change["symbol"]]
    assert set(diff["newly_matched"]) <= {c["sell_order_id"] for c in diff["changed_sells"]}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == EXPLAINED_CHECK and check.passed
    assert "Caused by orders new in version 2" in meta["summary"]


def test_a_version_without_predecessor_gives_an_empty_diff(ledger_url):
    seed_trade_records(ledger_url, BASE)
    summary = compute_version(LedgerStore(ledger_url))
    result = _materialize(ledger_url, summary.version)
    assert result.success
    meta = _metadata(result)
    assert meta["has_predecessor"] is False and "old_version" not in meta
    assert meta["new_version"] == summary.version and Decimal(meta["pnl_delta_usd_exact"]) == 0
    assert Decimal(meta["pnl_after_usd_exact"]) == summary.total_pnl_usd
    assert meta["changed_sells"] == meta["causing_orders"] == 0


def test_missing_version_fails_the_run(ledger_url):
    seed_trade_records(ledger_url, BASE)
    compute_version(LedgerStore(ledger_url))
    result = _materialize(ledger_url, 7)
    assert not result.success
    with pytest.raises(VersionError, match="version 7 does not exist"):
        try:
            run_version_partition([fifo_version_diff], 7, resources={
                "ledger": LedgerResource(database_url=ledger_url)})
        except dg.DagsterUserCodeExecutionError as exc:
            raise exc.user_exception from None


def test_edited_ledger_row_is_an_unexplained_change(ledger_url, capsys):
    seed_trade_records(ledger_url, BASE)
    store = LedgerStore(ledger_url)
    compute_version(store)
    with store.begin() as conn:
        conn.execute(text("UPDATE trade_records SET price = '111' WHERE order_id = 's1'"))
    compute_version(store)
    result = _materialize(ledger_url, 2)
    assert result.success  # a WARN check does not fail the run
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["allocation_version"].value == 2
    assert check.metadata["reasons"].value == [
        "allocations changed but no order appeared or left"]
    meta = _metadata(result)
    assert meta["changed_sells"] == 1 and Decimal(meta["pnl_delta_usd_exact"]) == 1
    # the CLI says why, not only that no row failed
    assert report_checks(JobOutcome("r", {}, [check]), strict=False) == EXIT_CLEAN
    assert capsys.readouterr().out.splitlines() == [
        f"  WARN  {EXPLAINED_CHECK} (0 rows)",
        "        allocations changed but no order appeared or left"]


def test_the_version_diff_job_loads_and_runs_the_check(sqlite_url):
    """The project's version_diff_job runs the asset with its check."""
    from recon_assets.automation.jobs import version_diff_job

    seed_trade_records(sqlite_url, BASE)
    compute_version(LedgerStore(sqlite_url))
    defs = dg.Definitions(assets=[fifo_version_diff], jobs=[version_diff_job],
                          resources={"ledger": LedgerResource(database_url=sqlite_url)})
    dg.Definitions.validate_loadable(defs)
    result = run_version_partition(defs.resolve_job_def("version_diff_job"), 1)
    assert [c.check_name for c in result.get_asset_check_evaluations()] == [EXPLAINED_CHECK]
