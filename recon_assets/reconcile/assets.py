"""Assets ``missing_orders`` (one reconciliation tier) and ``reconciliation_report``."""


import json
from datetime import timedelta
from typing import Iterator, Literal, Optional

import dagster as dg
import pandas as pd
from pydantic import Field
from sqlalchemy import select

from recon_assets.exchange.resources import ExchangeResource
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.schema import reconciliation_runs
from recon_assets.metadata import jsonable, metadata_table, row_count
from recon_assets.reconcile.service import Reconciliation, run_tier
from recon_assets.settings import current_user


class ReconcileConfig(dg.Config):
    """SPEC section 4: which reconciliation tier, over what."""

    tier: Literal["1", "2", "3"] = Field("3", description=(
        "1: exchange orders missing before the unmatched sells of a FIFO version (fast); "
        "2: order counts and size sums per symbol, UTC day and side, drilled down where they "
        "differ (weekly); 3: every order in the archive's span (deep audit)."))
    version: Optional[int] = Field(None, ge=1, description=(
        "Tier 1: the FIFO version whose unmatched sells are looked behind (default: latest)."))
    symbols: list[str] = Field([], description="Only these symbols (default: all).")
    lookback_days: int = Field(30, ge=1, le=3650, description=(
        "Tier 1: days before the first unmatched sell to look for missing orders."))
    auto_backfill: bool = Field(False, description=(
        "Approve and apply the backfill requests of this run at once (else they wait as "
        "pending for review)."))
    requested_by: Optional[str] = Field(None, description=(
        "Who the backfill requests are recorded for (default: the OS user)."))


#: What each finding check judges, its severity, and why that severity.
FINDING_CHECKS = {
    "missing": ("missing_orders", dg.AssetCheckSeverity.ERROR,
                "No exchange order is missing from trade_records (ERROR: a missing buy breaks "
                "FIFO cost basis, a missing sell hides realized PnL). Passes when every missing "
                "order was backfilled by this run (auto_backfill)."),
    "mismatches": ("mismatches", dg.AssetCheckSeverity.ERROR,
                   "No order differs between the exchange and the ledger in side, symbol, size, "
                   "price or fee beyond tolerance (ERROR: the ledger's numbers are wrong). "
                   "Judged by tier 3."),
    "phantom": ("phantom_orders", dg.AssetCheckSeverity.WARN,
                "No ledger order is absent from the exchange in the span judged (WARN: often a "
                "manual or test record; needs a look, breaks nothing the exchange shows). "
                "Judged by tiers 2 and 3."),
    "duplicates": ("duplicates", dg.AssetCheckSeverity.WARN,
                   "No order id appears twice on either side (WARN: double counting is kept out "
                   "of the comparison, but its source needs fixing). Judged by tier 3."),
}


def finding_check(name: str) -> str:
    return f"check_missing_orders_no_{name}"


@dg.asset(deps=["exchange_fills", "database_trades", "unmatched_sells"], group_name="reconcile",
          kinds={"python"},
          check_specs=[dg.AssetCheckSpec(finding_check(name), asset="missing_orders",
                                         description=description)
                       for name, (_, _, description) in FINDING_CHECKS.items()],
          description="Orders on the exchange that the ledger lacks (and, for tiers 2-3, "
                      "phantom, mismatched and duplicate orders), turned into backfill requests; "
                      "each kind of finding fails its check.")
def missing_orders(context: dg.AssetExecutionContext, config: ReconcileConfig,
                   ledger: LedgerResource, exchange: ExchangeResource
                   ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    exchange.check_configured()
    outcome = run_tier(ledger.get_store(), exchange.get_client, tier=int(config.tier),
                       logs_dir=ledger.logs_dir(), version=config.version,
                       symbols=config.symbols, lookback=timedelta(days=config.lookback_days),
                       auto_backfill=config.auto_backfill,
                       requested_by=config.requested_by or current_user(),
                       log=context.log.info)
    counts = outcome.diff.counts()
    missing = outcome.diff.missing_orders
    by_symbol = missing.groupby("symbol").size().to_dict() if not missing.empty else {}
    yield dg.MaterializeResult(metadata={
        **row_count(len(missing)),
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
    yield from finding_results(outcome)


def finding_results(outcome: Reconciliation) -> Iterator[dg.AssetCheckResult]:
    """One check result per kind of finding: it fails when the tier found any."""
    applied = set(outcome.applied_order_ids)
    for name, (attribute, severity, _) in FINDING_CHECKS.items():
        frame: pd.DataFrame = getattr(outcome.diff, attribute)
        open_rows = frame
        if name == "missing" and applied:
            open_rows = frame[~frame["order_id"].isin(applied)]
        rows = jsonable(frame.to_dict("records"))
        yield dg.AssetCheckResult(
            check_name=finding_check(name), passed=open_rows.empty, severity=severity,
            description=(f"tier {outcome.tier}: {len(frame)} {attribute.replace('_', ' ')}"
                         + (f", {len(frame) - len(open_rows)} backfilled by this run"
                            if len(frame) != len(open_rows) else "")),
            metadata={"tier": dg.MetadataValue.int(outcome.tier),
                      "failing_count": dg.MetadataValue.int(len(open_rows)),
                      "found": dg.MetadataValue.int(len(frame)),
                      "rows": metadata_table(rows, list(frame.columns)),
                      "failing": dg.MetadataValue.json(
                          jsonable(open_rows.head(100).to_dict("records")))})


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
