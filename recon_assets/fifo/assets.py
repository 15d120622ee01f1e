"""Assets downstream of a FIFO version partition: ``fifo_version_status``,
``unmatched_sells`` and ``daily_pnl_report``."""


import os
import uuid
from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from recon_assets.fifo.partitions import FIFO_VERSIONS, version_of
from recon_assets.fifo.reports import DAILY_COLUMNS, daily_pnl, daily_report
from recon_assets.fifo.review import unmatched_sells as review_frame
from recon_assets.fifo.service import resolve_version
from recon_assets.ledger import versions
from recon_assets.ledger.bulk import insert_new
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets.ledger.schema import manual_review_queue
from recon_assets.metadata import metadata_table, money, row_count


def read_run_version(context: dg.AssetExecutionContext, ledger: LedgerResource, *,
                     unmatched_sells_only: bool = False
                     ) -> tuple[LedgerStore, versions.VersionInfo, pd.DataFrame]:
    """The store, the partition's version and its rows."""
    store = ledger.get_store()
    info = resolve_version(store, version_of(context))
    with store.connect() as conn:
        rows = versions.read_allocations(conn, info.version,
                                         unmatched_sells_only=unmatched_sells_only)
    return store, info, rows


@dg.asset(deps=["fifo_allocations"], group_name="fifo", kinds={"sql"},
          partitions_def=FIFO_VERSIONS,
          description="The version's status in fifo_computation_log: validated (and so "
                      "immutable) once every blocking check of its partition passed. Dagster "
                      "runs it only then; a version whose blocking check failed stays "
                      "'computed', and the failed check says why.")
def fifo_version_status(context: dg.AssetExecutionContext,
                        ledger: LedgerResource) -> dg.MaterializeResult:
    store = ledger.get_store()
    version = version_of(context)
    with store.begin() as conn:
        versions.set_status(conn, version, versions.STATUS_VALIDATED)
    context.log.info(f"version {version}: every blocking check passed; version is validated")
    return dg.MaterializeResult(metadata={
        "allocation_version": dg.MetadataValue.int(version),
        "status": dg.MetadataValue.text(versions.STATUS_VALIDATED)})


@dg.asset(deps=["fifo_allocations"], group_name="fifo", kinds={"sql"},
          partitions_def=FIFO_VERSIONS,
          description="Sells that no earlier buy covers, with the inventory they found; "
                      "upserted into manual_review_queue for review.")
def unmatched_sells(context: dg.AssetExecutionContext,
                    ledger: LedgerResource) -> dg.MaterializeResult:
    store, info, rows = read_run_version(context, ledger, unmatched_sells_only=True)
    frame = review_frame(rows)
    now = datetime.now(timezone.utc)
    with store.begin() as conn:
        # Insert-ignore, not read-then-insert: two runs of one version (one wrote it, the other
        # found it stored) queue its sells at the same moment, and each sell goes in once.
        entries = [{
            "sell_order_id": r.sell_order_id, "symbol": r.symbol, "sell_time": r.sell_time,
            "sell_size": r.sell_size, "unmatched_size": r.unmatched_size,
            "inventory_at_sell": r.inventory_at_sell, "allocation_version": info.version,
            "status": "open", "created_at": now, "notes": r.notes,
        } for r in frame.itertuples()]
        newly_queued = insert_new(conn, manual_review_queue, entries)
    context.log.info(f"version {info.version}: {len(frame)} unmatched sells, "
                     f"{newly_queued} newly queued for review")
    per_symbol = frame.groupby("symbol").size().to_dict() if not frame.empty else {}
    return dg.MaterializeResult(metadata={
        "allocation_version": dg.MetadataValue.int(info.version),
        "unmatched_count": dg.MetadataValue.int(len(frame)),
        **row_count(len(frame)),
        "by_symbol": dg.MetadataValue.json({k: int(v) for k, v in per_symbol.items()}),
        "sells": metadata_table(frame.to_dict("records"),
                                ["sell_order_id", "symbol", "sell_time", "sell_size",
                                 "unmatched_size", "inventory_at_sell"]),
    })


@dg.asset(deps=["fifo_allocations"], group_name="fifo", kinds={"python"},
          partitions_def=FIFO_VERSIONS,
          description="Realized PnL per symbol and UTC day of the partition's FIFO version; "
                      "the full table is written to $RECON_HOME/reports/daily_pnl_v<N>.csv.")
def daily_pnl_report(context: dg.AssetExecutionContext,
                     ledger: LedgerResource) -> dg.MaterializeResult:
    store = ledger.get_store()
    info = resolve_version(store, version_of(context))
    with store.connect() as conn:
        sums = versions.daily_sums(conn, info.version)
        report = (daily_report(sums) if sums is not None
                  else daily_pnl(versions.read_allocations(conn, info.version, columnar=True)))
    path = ledger.reports_dir() / f"daily_pnl_v{info.version}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a reader (or a second run of the version) never sees half.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        report.to_csv(partial, index=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    context.log.info(f"version {info.version}: {len(report)} (day, symbol) rows -> {path}")
    recent = report.sort_values(["day", "symbol"], ascending=[False, True]).head(30)
    return dg.MaterializeResult(metadata={
        "allocation_version": dg.MetadataValue.int(info.version),
        "days": dg.MetadataValue.int(int(report["day"].nunique()) if len(report) else 0),
        **money("total_pnl_usd", info.total_pnl_usd),
        **row_count(len(report)),
        "recent_days": metadata_table(recent.to_dict("records"), DAILY_COLUMNS, limit=30),
        "csv": dg.MetadataValue.path(str(path)),
    })
