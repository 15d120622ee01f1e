"""Computing and loading FIFO versions against the ledger (I/O around the pure ``allocate``).

Shared by the ``fifo_allocations`` asset, its checks and the ``unmatched_sells`` asset, so the
Dagster layer stays thin and this logic is testable without Dagster.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Sequence

import pandas as pd
import pyarrow as pa
from sqlalchemy.engine import Connection

from recon_assets.errors import BadRowError, ConfigError, VersionError
from recon_assets.fifo import allocate
from recon_assets.fifo.reports import pnl_by_symbol
from recon_assets.fifo.version_diff import VersionDiff, diff_of_stored, diff_versions
from recon_assets.ledger import versions
from recon_assets.ledger.store import LedgerStore
from recon_assets.money import round_money
from recon_assets.trades import empty_trades


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


@dataclass(frozen=True)
class SymbolAllocations:
    """One step's share of a version: the allocations of some symbols, and their bad rows."""

    symbols: tuple[str, ...]
    trade_count: int
    allocations: pd.DataFrame
    problems: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What a computation will cover: the symbols (one step each when fanned out), the
    ledger fingerprint it starts from, and rows that no symbol step can see (no symbol, or
    an order id under two symbols)."""

    symbols: tuple[str, ...]
    fingerprint: str
    started: datetime
    ledger_problems: list[tuple[str, str, str]] = field(default_factory=list)
    #: The user said a ledger without ``total_fees_usd`` has zero fees (else it is refused).
    assume_zero_fees: bool = False

    @property
    def bad_order_ids(self) -> frozenset[str]:
        return frozenset(p[0] for p in self.ledger_problems)


def plan_version(store: LedgerStore, symbols: Sequence[str] = (),
                 assume_zero_fees: bool = False) -> Plan:
    """Fix the symbols and the starting fingerprint before any trade is read.

    A ledger without a column FIFO reads is refused first (without ``total_fees_usd`` unless
    ``assume_zero_fees``). A requested symbol the ledger has no order for is refused (a typo
    would otherwise write an empty version that the checks then hold against every symbol).
    """
    started = datetime.now(timezone.utc)
    store.trade_columns(assume_zero_fees=assume_zero_fees)
    fingerprint = str(store.fingerprint())
    present, problems = store.symbol_census()
    return Plan(scope_of(present, symbols), fingerprint, started, [] if symbols else problems,
                assume_zero_fees)


def scope_of(present: Sequence[str], symbols: Sequence[str]) -> tuple[str, ...]:
    """The symbols a computation covers: the requested ones, else all of the ledger's
    (``present``); a requested symbol the ledger has no order for is refused (ConfigError)."""
    unknown = sorted(set(symbols) - set(present))
    if unknown:
        raise ConfigError(f"no orders for {', '.join(map(repr, unknown))} in trade_records "
                          f"(symbols there: {', '.join(sorted(present)) or 'none'}); "
                          "nothing computed")
    return tuple(sorted(set(symbols) if symbols else present))


def allocate_symbols(store: LedgerStore, symbols: Sequence[str],
                     exclude: frozenset[str] = frozenset(),
                     assume_zero_fees: bool = False) -> SymbolAllocations:
    """Read these symbols' orders and allocate them (pure FIFO); bad rows are returned, not
    allocated, so one report can name every bad row of the ledger."""
    if not symbols:
        return SymbolAllocations((), 0, allocate(empty_trades()))
    normalized = store.read_trades(symbols=list(symbols), assume_zero_fees=assume_zero_fees)
    trades = normalized.trades
    if exclude:
        trades = trades[~trades["order_id"].isin(exclude)]
    return SymbolAllocations(tuple(symbols), len(trades), allocate(trades), normalized.problems)


@dataclass(frozen=True)
class NewVersionPlan:
    """What computing now would do (SPEC section 3): write ``version`` (max + 1), or, when
    ``unchanged_since`` is set, nothing: that version (``version`` is its number) already
    reflects the ledger."""

    version: int
    unchanged_since: versions.VersionInfo | None


def unchanged_since(store: LedgerStore, fingerprint: str, symbols: Sequence[str] = ()
                    ) -> versions.VersionInfo | None:
    """The newest version of the same scope (the same symbols, or all of the ledger's) when
    it was computed from the ledger as it is now; an older version with the same fingerprint
    does not count (the ledger changed and came back since)."""
    scope = sorted(symbols) if symbols else sorted(store.symbol_census()[0])
    return _newest_of_scope(store, fingerprint, scope)


def _newest_of_scope(store: LedgerStore, fingerprint: str, scope: Sequence[str]
                     ) -> versions.VersionInfo | None:
    with store.connect() as conn:
        logged = versions.list_versions(conn)
    for info in reversed(logged):
        if sorted(info.symbols) == list(scope):
            return info if info.ledger_fingerprint == fingerprint else None
    return None


def plan_new_version(store: LedgerStore, *, symbols: Sequence[str] = (),
                     force: bool = False) -> NewVersionPlan:
    """The version computing now would write (max + 1), or, when nothing FIFO reads changed
    since the newest version of the same scope and not ``force``, that version. A symbol
    the ledger has no order for is refused (ConfigError)."""
    scope = scope_of(store.symbol_census()[0], symbols)
    same = None if force else _newest_of_scope(store, str(store.fingerprint()), scope)
    if same is not None:
        return NewVersionPlan(same.version, same)
    with store.connect() as conn:
        return NewVersionPlan(versions.next_version(conn), None)


def stored_summary(info: versions.VersionInfo) -> VersionSummary:
    """A version as stored, in the shape a computation reports (nothing recomputed)."""
    return VersionSummary(
        version=info.version, batch_id=info.batch_id, trade_count=info.trade_count,
        allocation_count=info.allocation_count, unmatched_count=info.unmatched_count,
        total_pnl_usd=info.total_pnl_usd or Decimal(0), pnl_by_symbol={},
        symbols=info.symbols, ledger_fingerprint=info.ledger_fingerprint or "",
        skipped_rows=[tuple(r) for r in info.skipped_rows], reused=True)


def write_computed(store: LedgerStore, plan: Plan, parts: Sequence[SymbolAllocations], *,
                   version: int | None = None, replace: bool = False,
                   skip_bad_rows: bool = False,
                   log: Callable[[str], None] = lambda _m: None,
                   finish: Callable[[Connection], None] = lambda _c: None) -> VersionSummary:
    """Assemble the parts into one version and write it in one locked transaction.

    ``finish`` runs inside that transaction after the version is written (the fan-out
    deletes its staging rows there, so they go exactly when the version appears).

    Bad ledger rows stop the computation (nothing is written) unless ``skip_bad_rows``, in
    which case they are left out and listed in the version's log row.
    """
    problems = sorted(set(plan.ledger_problems).union(*(p.problems for p in parts)))
    if problems and not skip_bad_rows:
        raise BadRowError("ledger rows (FIFO refuses to write a version; fix them or pass "
                          "--skip-bad-rows)", problems)
    allocations = concat_allocations([p.allocations for p in parts])
    by_symbol = pnl_by_symbol(allocations)
    total = round_money(sum(by_symbol.values(), Decimal(0)))
    unmatched_count = int(allocations["buy_order_id"].isna().sum())
    trade_count = sum(p.trade_count for p in parts)
    symbols = sorted({s for p in parts for s in p.symbols})
    batch_id = uuid.uuid4().hex
    with store.locked("fifo") as conn:
        number = versions.claim_version(conn, version, replace)
        finished = datetime.now(timezone.utc)
        duration_ms = int((finished - plan.started).total_seconds() * 1000)
        versions.write_version(conn, version=number, batch_id=batch_id, allocations=allocations,
                               allocation_time=finished, log={
                                   "status": versions.STATUS_COMPUTED,
                                   "started_at": plan.started, "finished_at": finished,
                                   "duration_ms": duration_ms, "trade_count": trade_count,
                                   "allocation_count": len(allocations),
                                   "unmatched_count": unmatched_count, "symbols": symbols,
                                   "total_pnl_usd": total,
                                   "ledger_fingerprint": plan.fingerprint,
                                   "skipped_rows": [list(p) for p in problems],
                               })
        finish(conn)
    log(f"wrote FIFO version {number}: {len(allocations)} allocations over {trade_count} "
        f"orders, {unmatched_count} unmatched, total PnL {total}")
    return VersionSummary(
        version=number, batch_id=batch_id, trade_count=trade_count,
        allocation_count=len(allocations), unmatched_count=unmatched_count,
        total_pnl_usd=total, pnl_by_symbol=by_symbol, symbols=symbols,
        ledger_fingerprint=plan.fingerprint, skipped_rows=problems, duration_ms=duration_ms)


def concat_allocations(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack per-symbol allocations; decimal columns are widened to a common scale first
    (exact), so the result keeps pyarrow decimals instead of falling back to objects."""
    frames = [f for f in frames if len(f)] or list(frames[:1])
    if not frames:
        return allocate(empty_trades())
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    widened = []
    for column in frames[0].columns:
        types = [f[column].dtype for f in frames]
        arrow = [t.pyarrow_dtype for t in types if isinstance(t, pd.ArrowDtype)]
        if len(arrow) == len(types) and all(pa.types.is_decimal(t) for t in arrow):
            widened.append((column, pd.ArrowDtype(pa.decimal128(
                max(t.precision for t in arrow), max(t.scale for t in arrow)))))
    cast = dict(widened)
    return pd.concat([f.astype(cast) for f in frames], ignore_index=True)


def compute_version(store: LedgerStore, *, version: int | None = None, replace: bool = False,
                    symbols: Sequence[str] = (), skip_bad_rows: bool = False,
                    only_if_changed: bool = False, assume_zero_fees: bool = False,
                    log: Callable[[str], None] = lambda _m: None) -> VersionSummary:
    """Plan, allocate and write a version in one process (the fan-out's steps in sequence).

    With ``only_if_changed`` the latest version is reused when it was computed from the
    ledger as it is now (same fingerprint), as the weekly schedule wants.
    ``assume_zero_fees`` allows a ledger without ``total_fees_usd`` (see :func:`plan_version`).
    """
    plan = plan_version(store, symbols, assume_zero_fees)
    if only_if_changed and version is None:
        same = unchanged_since(store, plan.fingerprint, symbols)
        if same is not None:
            log(f"ledger unchanged since version {same.version}; not recomputing")
            return stored_summary(same)
    log(f"allocating {len(plan.symbols)} symbols")
    part = allocate_symbols(store, plan.symbols, exclude=plan.bad_order_ids,
                            assume_zero_fees=assume_zero_fees)
    return write_computed(store, plan, [part], version=version, replace=replace,
                          skip_bad_rows=skip_bad_rows, log=log)


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
    """A version's allocations and the ledger trades of its symbols (for validation).

    A ledger without ``total_fees_usd`` is read with zero fees: a version over it exists only
    because the user assumed them, and validation judges that version as computed.
    """
    with store.connect() as conn:
        allocations = versions.read_allocations(conn, info.version, columnar=True)
    trades = store.read_trades(symbols=info.symbols or None, assume_zero_fees=True).trades
    if info.skipped_rows:
        skipped = {row[0] for row in info.skipped_rows}
        trades = trades[~trades["order_id"].isin(skipped)]
    return allocations, trades


def diff_stored(conn: Connection, old: int, new: int) -> VersionDiff:
    """Compare two stored versions (a version with itself when it has no predecessor): in the
    database where it can (:func:`recon_assets.ledger.versions.diff_in_database`), else on
    their rows read back."""
    stored = versions.diff_in_database(conn, old, new)
    if stored is not None:
        return diff_of_stored(stored, old, new)
    new_rows = versions.read_allocations(conn, new, columnar=True)
    old_rows = new_rows if old == new else versions.read_allocations(conn, old, columnar=True)
    return replace(diff_versions(old_rows, new_rows), old_version=old, new_version=new)
