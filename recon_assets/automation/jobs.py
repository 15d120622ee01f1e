"""The jobs that the CLI, the schedules and the sensors run (one definition each).

The FIFO jobs are partitioned by version (``fifo_versions``): a run works on one version.
"""

from __future__ import annotations

import dagster as dg

#: deploy/dagster.yaml allows one run at a time with this tag, so two runs never touch the
#: ledger together even if the instance's overall limit is raised.
EXCLUSIVE = {"recon-assets/exclusive": "ledger"}

_RECONCILE = dg.AssetSelection.assets("exchange_fills", "database_trades", "missing_orders",
                                      "reconciliation_report")

sync_job = dg.define_asset_job(
    "sync_job", selection=dg.AssetSelection.assets("exchange_fills", "database_trades"),
    tags=EXCLUSIVE, description="Pull new exchange fills into the archive and re-read the ledger.")

fifo_job = dg.define_asset_job(
    "fifo_job",
    selection=dg.AssetSelection.assets("database_trades", "fifo_allocations", "fifo_version_status",
                                       "unmatched_sells", "fifo_version_diff", "daily_pnl_report"),
    tags=EXCLUSIVE, description="Check the ledger's rows, compute the partition's FIFO version "
                                "(or report it as stored), "
                                "validate it, queue its unmatched sells, compare it with the "
                                "version before, and report its daily PnL.")

validate_job = dg.define_asset_job(
    "validate_job",
    selection=(dg.AssetSelection.checks_for_assets("fifo_allocations")
               | dg.AssetSelection.assets("fifo_version_status")),
    tags=EXCLUSIVE, description="Run the validation checks on the partition's FIFO version "
                                "against today's ledger; mark it validated when they pass.")

reconcile_job = dg.define_asset_job(
    "reconcile_job", selection=_RECONCILE, tags=EXCLUSIVE,
    description="Sync, then find missing orders with the configured tier (default 3).")

weekly_reconciliation_job = dg.define_asset_job(
    "weekly_reconciliation_job", selection=_RECONCILE, tags=EXCLUSIVE,
    config={"ops": {"missing_orders": {"config": {"tier": "2"}}}},
    description="Weekly: sync, tier 2 reconciliation (count buckets, drilled down where they "
                "differ) and every check of the archive, the ledger and the findings. FIFO "
                "recomputes are the ledger sensor's job.")

version_diff_job = dg.define_asset_job(
    "version_diff_job", selection=dg.AssetSelection.assets("fifo_version_diff"),
    tags=EXCLUSIVE, description="Compare the partition's FIFO version with the one before it.")

daily_pnl_job = dg.define_asset_job(
    "daily_pnl_job", selection=dg.AssetSelection.assets("daily_pnl_report"),
    tags=EXCLUSIVE, description="Realized PnL per symbol and day of the partition's version.")

JOBS = [sync_job, fifo_job, validate_job, reconcile_job, weekly_reconciliation_job,
        version_diff_job, daily_pnl_job]
