"""Running one reconciliation tier against the ledger and the exchange (I/O around the pure
tier functions), recording it, and turning findings into backfill requests.

Shared by the ``missing_orders`` asset (and through it the CLI, the schedule and the UI).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
from sqlalchemy import insert, update

from recon_assets.exchange.client import ExchangeClient
from recon_assets.exchange.models import normalize_fills
from recon_assets.errors import BadRowError
from recon_assets.fifo.review import unmatched_sells
from recon_assets.fifo.service import resolve_version
from recon_assets.ledger import backfill, versions
from recon_assets.ledger.fills import read_fills
from recon_assets.ledger.schema import reconciliation_runs
from recon_assets.ledger.store import LedgerStore
from recon_assets.metadata import jsonable
from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets.reconcile.compare import OrderDiff
from recon_assets.reconcile.logfile import write_reconciliation_log
from recon_assets.reconcile.scope import archive_span, check_symbols, judged_ledger, span_text
from recon_assets.reconcile.tiers import (Window, count_buckets, differing_buckets,
                                          drill_down, full_audit, report_lines,
                                          tier1_missing, tier1_windows)
from recon_assets.trades import TRADE_COLUMNS


@dataclass
class Reconciliation:
    """One tier's outcome: the diff, what it looked at, and what happened to the findings."""

    tier: int
    diff: OrderDiff
    version: int | None
    unmatched: pd.DataFrame
    run_id: int
    exchange_requests: int
    seconds: float
    lines: list[str]
    log_path: Path
    request_ids: list[int] = field(default_factory=list)
    applied_order_ids: list[str] = field(default_factory=list)
    differing_buckets: int = 0
    #: The span of order times judged (None: nothing was, e.g. an empty fills archive), and
    #: how many ledger orders fell outside it.
    window: Window | None = None
    outside_window: int = 0

    def findings(self) -> dict[str, Any]:
        """The ``--json`` object of SPEC section 5 (numbers as decimal strings)."""
        return {
            "tier": self.tier, "version": self.version,
            "missing_orders": _orders(self.diff.missing_orders),
            "unmatched_sells": jsonable(self.unmatched.to_dict("records")),
            "mismatches": jsonable(self.diff.mismatches.to_dict("records")),
            "phantom_orders": _orders(self.diff.phantom_orders),
            "duplicates": jsonable(self.diff.duplicates.to_dict("records")),
        }


def _orders(frame: pd.DataFrame) -> list[dict[str, Any]]:
    renamed = frame[TRADE_COLUMNS].rename(columns={"total_fees_usd": "fee"})
    return jsonable(renamed.to_dict("records"))


def _exchange_orders_live(client: ExchangeClient, windows: dict[str, tuple[Any, Any]],
                          ledger_ids: set[str]) -> pd.DataFrame:
    """Tier 1's exchange side: only the affected symbols and windows; then, for the orders
    the ledger lacks, every fill by order id, so an order whose fills straddle a window edge
    is aggregated whole (orders the ledger has need no second look)."""
    records: list[dict] = []
    for symbol, (start, end) in sorted(windows.items()):
        for page in client.iter_fills(product_ids=[symbol], start_sequence_timestamp=start,
                                      end_sequence_timestamp=end + pd.Timedelta(seconds=1)):
            records.extend(page)
    missing = sorted({r.get("order_id") for r in records if r.get("order_id")} - ledger_ids)
    complete: list[dict] = []
    for chunk in range(0, len(missing), 100):
        for page in client.iter_fills(order_ids=missing[chunk:chunk + 100]):
            complete.extend(page)
    fills, problems = normalize_fills(complete)
    if problems:
        raise BadRowError("exchange fills", problems)
    return aggregate_fills(fills)


def run_tier(store: LedgerStore, client_factory: Callable[[], ExchangeClient], *, tier: int,
             logs_dir: Path, version: int | None = None, symbols: Sequence[str] = (),
             lookback: timedelta = timedelta(days=30), auto_backfill: bool = False,
             requested_by: str = "recon-assets",
             log: Callable[[str], None] = lambda _m: None) -> Reconciliation:
    """Run tier 1, 2 or 3 (SPEC section 4), record it in ``reconciliation_runs``, create
    backfill requests for the missing orders (and apply them with ``auto_backfill``), and
    write the reconciliation log file."""
    check_symbols(store, symbols)
    started = datetime.now(timezone.utc)
    with store.begin() as conn:
        run_id = conn.execute(insert(reconciliation_runs).values(
            tier=tier, started_at=started, status="running")).inserted_primary_key[0]
    try:
        return _run(store, client_factory, run_id, started, tier=tier, logs_dir=logs_dir,
                    version=version, symbols=symbols, lookback=lookback,
                    auto_backfill=auto_backfill, requested_by=requested_by, log=log)
    except Exception:
        with store.begin() as conn:
            conn.execute(update(reconciliation_runs).where(reconciliation_runs.c.id == run_id)
                         .values(status="failed", finished_at=datetime.now(timezone.utc)))
        raise


def _run(store: LedgerStore, client_factory: Callable[[], ExchangeClient], run_id: int,
         started: datetime, *, tier: int, logs_dir: Path, version: int | None,
         symbols: Sequence[str], lookback: timedelta, auto_backfill: bool, requested_by: str,
         log: Callable[[str], None]) -> Reconciliation:
    clock = time.perf_counter()
    ledger = store.read_trades(symbols=list(symbols) or None).trades
    requests = 0
    buckets = 0
    unmatched = pd.DataFrame(columns=["sell_order_id", "symbol", "sell_time"])
    with store.connect() as conn:
        latest = versions.latest_version(conn)
    info = None  # tiers 2-3 report a version's unmatched sells only when there is one
    if tier == 1 or latest is not None:
        info = latest if version is None and latest is not None else resolve_version(
            store, version)
    if info is not None:
        with store.connect() as conn:
            unmatched = unmatched_sells(versions.read_allocations(
                conn, info.version, unmatched_sells_only=True))
        if symbols:
            unmatched = unmatched[unmatched["symbol"].isin(list(symbols))]
    if tier == 1:
        windows = tier1_windows(unmatched, lookback)
        log(f"tier 1: {len(unmatched)} unmatched sells in version {info.version}; fetching "
            f"{len(windows)} symbol windows from the exchange")
        with client_factory() as client:
            exchange = (_exchange_orders_live(client, windows, set(ledger["order_id"]))
                        if windows
                        else ledger.iloc[0:0])
            requests = client.stats.requests
        diff = tier1_missing(exchange, ledger, windows)
        window = (min(w[0] for w in windows.values()),
                  max(w[1] for w in windows.values())) if windows else None
        outside = 0
        span_line = (f"Judged span: {span_text(window)} (from {lookback.days} days before "
                     "the first unmatched sell to the last)" if window else
                     "Judged span: none (no unmatched sells)")
    else:
        window = archive_span(store)
        fills = read_fills(store, product_ids=list(symbols) or None)
        exchange = aggregate_fills(fills)
        judged = judged_ledger(ledger, exchange, window)
        outside = len(ledger) - len(judged)
        span_line = (f"Judged span: {span_text(window)} (the fills archive, first to last "
                     f"fill); {outside} ledger orders outside it not judged" if window else
                     "Judged span: none (the fills archive is empty, so no ledger order is "
                     "judged phantom; run `recon-assets sync` first)")
        log(f"tier {tier}: {len(fills)} archived fills = {len(exchange)} exchange orders vs "
            f"{len(judged)} ledger orders in the archive's span ({outside} outside)")
        if tier == 2:
            differing = differing_buckets(count_buckets(exchange), count_buckets(judged))
            buckets = len(differing)
            log(f"tier 2: {buckets} (symbol, day, side) buckets differ; drilling down")
            diff = drill_down(exchange, judged, differing)
        else:  # exchange orders and fills lie in the span by construction, judged is cut
            diff = full_audit(exchange, judged, fills)
    lines = report_lines(diff, tier)
    lines.insert(1, span_line)
    request_ids: list[int] = []
    applied: list[str] = []
    with store.locked("backfill") as conn:
        if not diff.missing_orders.empty:
            request_ids = backfill.create_requests(
                conn, diff.missing_orders, tier=tier, reason=f"missing in ledger (tier {tier})",
                created_by=requested_by, run_id=run_id)
        if auto_backfill and not diff.missing_orders.empty:
            wanted = backfill.list_requests(conn)
            wanted = wanted[wanted["order_id"].isin(diff.missing_orders["order_id"])]
            pending = wanted[wanted["status"] == backfill.PENDING]["id"].tolist()
            if pending:
                backfill.approve(conn, pending, requested_by)
            todo = wanted[wanted["status"].isin([backfill.PENDING, backfill.APPROVED])]
            if not todo.empty:  # rejected orders stay out
                applied = backfill.apply(conn, todo["id"].tolist(),
                                         requested_by).inserted_order_ids
        counts = diff.counts()
        status = "clean" if diff.is_clean else "findings"
        seconds = time.perf_counter() - clock
        if applied:
            lines.append(f"Backfilled {len(applied)} orders into trade_records; run "
                         "`recon-assets fifo` for a new FIFO version (the ledger sensor does "
                         "it by itself under the Dagster daemon).")
        elif request_ids:
            lines.append(f"Created {len(request_ids)} backfill requests: review with "
                         "`recon-assets backfill list`, then approve and apply.")
        log_path = write_reconciliation_log(logs_dir, [
            f"recon-assets reconciliation run {run_id} at {started.isoformat()}",
            f"tier {tier}, FIFO version {info.version if info else '-'}, "
            f"symbols {', '.join(symbols) or 'all'}, exchange requests {requests}",
            *lines, f"took {seconds:.2f}s"])
        result = Reconciliation(tier=tier, diff=diff, version=info.version if info else None,
                                unmatched=unmatched, run_id=run_id, exchange_requests=requests,
                                seconds=seconds, lines=lines, log_path=log_path,
                                request_ids=request_ids, applied_order_ids=applied,
                                differing_buckets=buckets, window=window,
                                outside_window=outside)
        conn.execute(update(reconciliation_runs).where(reconciliation_runs.c.id == run_id)
                     .values(finished_at=datetime.now(timezone.utc), status=status,
                             window_start=window[0].to_pydatetime() if window else None,
                             window_end=window[1].to_pydatetime() if window else None,
                             summary=result.findings(),
                             allocation_version=info.version if info else None,
                             missing_count=counts["missing_orders"],
                             phantom_count=counts["phantom_orders"],
                             mismatch_count=counts["mismatches"],
                             duplicate_count=counts["duplicates"],
                             unmatched_count=len(unmatched), exchange_requests=requests,
                             log_path=str(log_path)))
    log(f"tier {tier}: {counts['missing_orders']} missing ({counts['missing_buys']} buys), "
        f"{counts['phantom_orders']} phantom, {counts['mismatches']} mismatches, "
        f"{counts['duplicates']} duplicates; log {log_path}")
    return result

