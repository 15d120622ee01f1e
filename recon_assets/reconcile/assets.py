"""Assets ``missing_orders`` (one reconciliation tier) and ``reconciliation_report``."""


import json
from datetime import timedelta
from typing import Optional

import dagster as dg
from sqlalchemy import select

from recon_assets.exchange.resources import ExchangeResource
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.schema import reconciliation_runs
from recon_assets.metadata import metadata_table
from recon_assets.reconcile.service import Reconciliation, run_tier
from recon_assets.settings import current_user


class ReconcileConfig(dg.Config):
    """SPEC section 4: tier 1 behind unmatched sells, 2 count buckets, 3 full audit."""

    tier: int = 3
    version: Optional[int] = None
    symbols: list[str] = []
    lookback_days: int = 30
    auto_backfill: bool = False
    requested_by: Optional[str] = None


@dg.asset(deps=["exchange_fills", "database_trades", "unmatched_sells"], group_name="reconcile",
          kinds={"python"},
          description="Orders on the exchange that the ledger lacks (and, for tiers 2-3, "
                      "phantom, mismatched and duplicate orders), turned into backfill requests.")
def missing_orders(context: dg.AssetExecutionContext, config: ReconcileConfig,
                   ledger: LedgerResource, exchange: ExchangeResource) -> dg.MaterializeResult:
    exchange.check_configured()
    if config.tier not in (1, 2, 3):
        raise dg.Failure(f"tier must be 1, 2 or 3, got {config.tier}")
    outcome = run_tier(ledger.get_store(), exchange.get_client, tier=config.tier,
                       logs_dir=ledger.logs_dir(), version=config.version,
                       symbols=config.symbols, lookback=timedelta(days=config.lookback_days),
                       auto_backfill=config.auto_backfill,
                       requested_by=config.requested_by or current_user(),
                       log=context.log.info)
    counts = outcome.diff.counts()
    missing = outcome.diff.missing_orders
    by_symbol = missing.groupby("symbol").size().to_dict() if not missing.empty else {}
    return dg.MaterializeResult(metadata={
        "tier": dg.MetadataValue.int(outcome.tier),
        "allocation_version": dg.MetadataValue.int(outcome.version or 0),
        "reconciliation_run_id": dg.MetadataValue.int(outcome.run_id),
        **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
        "unmatched_sells": dg.MetadataValue.int(len(outcome.unmatched)),
        "missing_by_symbol": dg.MetadataValue.json({k: int(v) for k, v in by_symbol.items()}),
        "differing_buckets": dg.MetadataValue.int(outcome.differing_buckets),
        **_window_metadata(outcome),
        "exchange_requests": dg.MetadataValue.int(outcome.exchange_requests),
        "seconds": dg.MetadataValue.float(round(outcome.seconds, 3)),
        "backfill_requests_created": dg.MetadataValue.int(len(outcome.request_ids)),
        "backfilled_orders": dg.MetadataValue.int(len(outcome.applied_order_ids)),
        "log_file": dg.MetadataValue.path(str(outcome.log_path)),
        "report": dg.MetadataValue.md("\n".join(f"    {line}" for line in outcome.lines)),
    })


def _window_metadata(outcome: Reconciliation) -> dict[str, dg.MetadataValue]:
    """The span of order times the tier judged, so the UI says what a clean run covers."""
    if outcome.window is None:
        return {"window": dg.MetadataValue.text("none: nothing judged")}
    return {"window_start": dg.MetadataValue.timestamp(outcome.window[0].to_pydatetime()),
            "window_end": dg.MetadataValue.timestamp(outcome.window[1].to_pydatetime()),
            "ledger_orders_outside_window": dg.MetadataValue.int(outcome.outside_window)}


@dg.asset(deps=["missing_orders"], group_name="reconcile", kinds={"python"},
          description="A short Markdown summary of the latest reconciliation runs.")
def reconciliation_report(context: dg.AssetExecutionContext,
                          ledger: LedgerResource) -> dg.MaterializeResult:
    store = ledger.get_store()
    with store.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(reconciliation_runs).order_by(reconciliation_runs.c.id.desc()).limit(10)
        ).mappings()]
    latest = rows[0] if rows else {}
    table = metadata_table(rows, ["id", "tier", "status", "started_at", "allocation_version",
                                  "missing_count", "phantom_count", "mismatch_count",
                                  "duplicate_count", "unmatched_count"])
    context.log.info(f"{len(rows)} recent reconciliation runs")
    return dg.MaterializeResult(metadata={
        "latest_status": dg.MetadataValue.text(str(latest.get("status", "none"))),
        "latest_missing": dg.MetadataValue.int(int(latest.get("missing_count") or 0)),
        "recent_runs": table,
        "latest_summary": dg.MetadataValue.text(json.dumps(
            {k: str(v) for k, v in latest.items() if k != "summary"})),
    })
