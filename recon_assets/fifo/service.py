"""Computing and loading FIFO versions against the ledger (I/O around the pure ``allocate``).

Shared by the ``fifo_allocations`` asset, its checks and the ``unmatched_sells`` asset, so the
Dagster layer stays thin and this logic is testable without Dagster.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Sequence

import pandas as pd

from recon_assets.errors import BadRowError, VersionError
from recon_assets.fifo import allocate
from recon_assets.ledger import versions
from recon_assets.ledger.store import LedgerStore
from recon_assets.money import round_money


@dataclass(frozen=True)
class VersionSummary:
    """What a computation wrote: the numbers that become asset metadata and CLI output."""

    version: int
    batch_id: str
    trade_count: int
    allocation_count: int
    unmatched_count: int
    total_pnl_usd: Decimal
    pnl_by_symbol: dict[str, Decimal]
    symbols: list[str]
    ledger_fingerprint: str
    skipped_rows: list[tuple[str, str, str]] = field(default_factory=list)
    duration_ms: int = 0
    reused: bool = False


def compute_version(store: LedgerStore, *, version: int | None = None, replace: bool = False,
                    symbols: Sequence[str] = (), skip_bad_rows: bool = False,
                    only_if_changed: bool = False,
                    log: Callable[[str], None] = lambda _m: None) -> VersionSummary:
    """Read the ledger, allocate FIFO, and write a new version in one locked transaction.

    Bad ledger rows stop the computation (nothing is written) unless ``skip_bad_rows``, in
    which case they are left out and listed in the version's log row. With
    ``only_if_changed`` the latest version is reused when it was computed from the ledger as
    it is now (same fingerprint), as the weekly schedule wants.
    """
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    fingerprint = store.fingerprint()
    if only_if_changed and version is None and not symbols:
        with store.connect() as conn:
            latest = versions.latest_version(conn)
        if latest is not None and latest.ledger_fingerprint == str(fingerprint):
            log(f"ledger unchanged since version {latest.version}; not recomputing")
            return VersionSummary(
                version=latest.version, batch_id=latest.batch_id,
                trade_count=latest.trade_count, allocation_count=latest.allocation_count,
                unmatched_count=latest.unmatched_count,
                total_pnl_usd=latest.total_pnl_usd or Decimal(0), pnl_by_symbol={},
                symbols=latest.symbols, ledger_fingerprint=str(fingerprint), reused=True)
    normalized = store.read_trades(symbols=list(symbols) or None)
    if normalized.problems and not skip_bad_rows:
        raise BadRowError("ledger rows (FIFO refuses to write a version; fix them or pass "
                          "--skip-bad-rows)", normalized.problems)
    trades = normalized.trades
    log(f"allocating {len(trades)} orders over {trades['symbol'].nunique()} symbols")
    allocations = allocate(trades)
    matched = allocations[allocations["buy_order_id"].notna()]
    pnl_by_symbol = {sym: round_money(sum(group.tolist(), Decimal(0)))
                     for sym, group in matched.groupby("symbol")["pnl_usd"]}
    total = round_money(sum(pnl_by_symbol.values(), Decimal(0)))
    unmatched_count = int(allocations["buy_order_id"].isna().sum())
    batch_id = uuid.uuid4().hex
    with store.locked("fifo") as conn:
        number = versions.claim_version(conn, version, replace)
        finished = datetime.now(timezone.utc)
        duration_ms = int((time.perf_counter() - clock) * 1000)
        versions.write_version(conn, version=number, batch_id=batch_id, allocations=allocations,
                               allocation_time=finished, log={
                                   "status": versions.STATUS_COMPUTED, "started_at": started,
                                   "finished_at": finished, "duration_ms": duration_ms,
                                   "trade_count": len(trades),
                                   "allocation_count": len(allocations),
                                   "unmatched_count": unmatched_count,
                                   "symbols": sorted(trades["symbol"].unique().tolist()),
                                   "total_pnl_usd": total,
                                   "ledger_fingerprint": str(fingerprint),
                                   "skipped_rows": [list(p) for p in normalized.problems],
                               })
    log(f"wrote FIFO version {number}: {len(allocations)} allocations, "
        f"{unmatched_count} unmatched, total PnL {total}")
    return VersionSummary(
        version=number, batch_id=batch_id, trade_count=len(trades),
        allocation_count=len(allocations), unmatched_count=unmatched_count,
        total_pnl_usd=total, pnl_by_symbol=pnl_by_symbol,
        symbols=sorted(trades["symbol"].unique().tolist()),
        ledger_fingerprint=str(fingerprint), skipped_rows=normalized.problems,
        duration_ms=duration_ms)


def resolve_version(store: LedgerStore, version: int | None) -> versions.VersionInfo:
    """The requested version, or the latest one; a clear error when there is none."""
    with store.connect() as conn:
        info = (versions.get_version(conn, version) if version is not None
                else versions.latest_version(conn))
    if info is None:
        raise VersionError(f"FIFO version {version} does not exist" if version is not None
                           else "no FIFO version yet: run `recon-assets fifo` first")
    return info


def load_version(store: LedgerStore, info: versions.VersionInfo
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A version's allocations and the ledger trades of its symbols (for validation)."""
    with store.connect() as conn:
        allocations = versions.read_allocations(conn, info.version)
    trades = store.read_trades(symbols=info.symbols or None).trades
    if info.skipped_rows:
        skipped = {row[0] for row in info.skipped_rows}
        trades = trades[~trades["order_id"].isin(skipped)]
    return allocations, trades
