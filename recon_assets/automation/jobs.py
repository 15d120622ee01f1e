"""The jobs that the CLI, the schedules and the sensors run (one definition each)."""

from __future__ import annotations

import dagster as dg

#: deploy/dagster.yaml allows one run at a time with this tag, so two runs never touch the
#: ledger together even if the instance's overall limit is raised.
EXCLUSIVE = {"recon-assets/exclusive": "ledger"}

sync_job = dg.define_asset_job(
    "sync_job", selection=dg.AssetSelection.assets("exchange_fills", "database_trades"),
    tags=EXCLUSIVE, description="Pull new exchange fills into the archive and re-read the ledger.")

fifo_job = dg.define_asset_job(
    "fifo_job",
    selection=dg.AssetSelection.assets("database_trades", "fifo_allocations", "unmatched_sells",
                                       "fifo_version_diff", "daily_pnl_report"),
    tags=EXCLUSIVE, description="Compute a new FIFO version, validate it, queue its unmatched sells, and "
                "compare it with the version before.")

validate_job = dg.define_asset_job(
    "validate_job", selection=dg.AssetSelection.checks_for_assets("fifo_allocations"),
    tags=EXCLUSIVE, description="Run the validation checks on a FIFO version (the latest by default).")

reconcile_job = dg.define_asset_job(
    "reconcile_job",
    selection=dg.AssetSelection.assets("exchange_fills", "database_trades", "missing_orders",
                                       "reconciliation_report"),
    tags=EXCLUSIVE, description="Sync, then find missing orders with the configured tier.")

weekly_reconciliation_job = dg.define_asset_job(
    "weekly_reconciliation_job",
    selection=dg.AssetSelection.assets(
        "exchange_fills", "database_trades", "fifo_allocations", "unmatched_sells",
        "missing_orders", "reconciliation_report", "daily_pnl_report"),
    tags=EXCLUSIVE, description="Weekly: sync, FIFO for the latest ledger if it changed, tier 2, and checks.")

version_diff_job = dg.define_asset_job(
    "version_diff_job", selection=dg.AssetSelection.assets("fifo_version_diff"),
    tags=EXCLUSIVE, description="Compare two FIFO versions (default: the latest and the one before it).")

JOBS = [sync_job, fifo_job, validate_job, reconcile_job, weekly_reconciliation_job,
        version_diff_job]
