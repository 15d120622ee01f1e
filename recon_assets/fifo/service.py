"""Computing and loading FIFO versions against the ledger (I/O around the pure ``allocate``).

Shared by the ``fifo_allocations`` asset, its checks and the ``unmatched_sells`` asset, so the
Dagster layer stays thin and this logic is testable without Dagster.

A version is incremental: the symbols whose orders did not change since the version before it
of the same scope (same per-symbol fingerprint, same settings) are *carried*, their rows
copied in the database, and only the others are read and allocated. Each version's log row
keeps every symbol's figures (:class:`SymbolRecord`), so the carried symbols count exactly as
a full recompute would count them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace as replaced
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import pyarrow as pa
from sqlalchemy.engine import Connection

from recon_assets.errors import BadRowError, ConfigError, VersionError
from recon_assets.fifo import allocate
from recon_assets.fifo.reports import pnl_by_symbol
from recon_assets.fifo.rules import (ALLOCATION_INPUTS, RULES_REVISION, recorded_form,
                                     validate_allocations, worded_alike_at_any_scale)
from recon_assets.fifo.version_diff import VersionDiff, diff_of_stored, diff_versions
from recon_assets.ledger import check_results, versions
from recon_assets.ledger.store import LedgerStore
from recon_assets.money import decimal_str, round_money
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
    """One step's share of a version: the allocations of some symbols, how many of their
    orders were allocated (per symbol), and their bad rows."""

    symbols: tuple[str, ...]
    trade_counts: Mapping[str, int]
    allocations: pd.DataFrame
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    #: Each symbol's share of ``problems``; None when not known.
    problems_by_symbol: Mapping[str, list[tuple[str, str, str]]] | None = None
    #: Symbol -> the decimal scale of each column of its own allocations, had it been
    #: allocated alone (symbols without allocations are left out).
    scales: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: Symbol -> (the fingerprint of its orders as read, the validation rules' results over
    #: its allocations and those orders, as ``recorded_form`` keeps them): for the symbols
    #: judged where they were allocated (:func:`allocate_symbols` with ``judge``).
    judgments: Mapping[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def trade_count(self) -> int:
        return sum(self.trade_counts.values())


@dataclass(frozen=True)
class SymbolRecord:
    """One symbol's share of a version, as its log row keeps it (``per_symbol``): what a later
    version that copies the symbol's rows instead of recomputing them counts for it."""

    #: The fingerprint of the symbol's orders the rows were computed from.
    fingerprint: str | None
    trade_count: int
    allocation_count: int
    unmatched_count: int
    #: Realized PnL (rounded as ``pnl_by_symbol`` rounds it); None without a matched row.
    pnl_usd: Decimal | None
    #: The symbol's bad rows; None when not known (found together with other symbols').
    problems: tuple[tuple[str, str, str], ...] | None
    #: The decimal scale of each column of its allocations, alone (a version's column has the
    #: largest of its symbols', as a full recompute's does).
    scales: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "trade_count": self.trade_count,
                "allocation_count": self.allocation_count,
                "unmatched_count": self.unmatched_count,
                "pnl_usd": None if self.pnl_usd is None else str(self.pnl_usd),
                "problems": None if self.problems is None else [list(p) for p in self.problems],
                "scales": dict(self.scales)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SymbolRecord:
        pnl, problems = data["pnl_usd"], data["problems"]
        return cls(data["fingerprint"], data["trade_count"], data["allocation_count"],
                   data["unmatched_count"], None if pnl is None else Decimal(pnl),
                   None if problems is None else tuple(tuple(p) for p in problems),
                   data["scales"])


@dataclass(frozen=True)
class Carry:
    """The symbols a version copies from the version before it of the same scope (their
    orders did not change since), with what they contributed there."""

    version: int
    batch_id: str
    symbols: Mapping[str, SymbolRecord]
    #: The decimal scale of each column of that version (every row has it).
    scales: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "batch_id": self.batch_id,
                "symbols": {s: r.to_json() for s, r in self.symbols.items()},
                "scales": dict(self.scales)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Carry:
        return cls(data["version"], data["batch_id"],
                   {s: SymbolRecord.from_json(r) for s, r in data["symbols"].items()},
                   data["scales"])


@dataclass(frozen=True)
class Plan:
    """What a computation will cover: the symbols to allocate (one step each when fanned
    out), the ones copied from the version before (``carry``), the ledger fingerprint it
    starts from (and each symbol's), and rows that no symbol step can see (no symbol, or an
    order id under two symbols)."""

    symbols: tuple[str, ...]
    fingerprint: str
    started: datetime
    ledger_problems: list[tuple[str, str, str]] = field(default_factory=list)
    #: The user said a ledger without ``total_fees_usd`` has zero fees (else it is refused).
    assume_zero_fees: bool = False
    #: Symbol -> the fingerprint of its orders, for every symbol of the scope.
    symbol_fingerprints: Mapping[str, str] = field(default_factory=dict)
    #: What, besides a symbol's orders, its rows depend on (or whether they are written): a
    #: symbol is carried only from a version computed with the same (see plan_version).
    settings: Mapping[str, Any] = field(default_factory=dict)
    carry: Carry | None = None

    @property
    def bad_order_ids(self) -> frozenset[str]:
        return frozenset(p[0] for p in self.ledger_problems)

    @property
    def scope(self) -> tuple[str, ...]:
        """Every symbol the version covers: allocated and carried."""
        return tuple(sorted({*self.symbols, *(self.carry.symbols if self.carry else ())}))


def plan_version(store: LedgerStore, symbols: Sequence[str] = (),
                 assume_zero_fees: bool = False, *, version: int | None = None,
                 skip_bad_rows: bool = False, carry: bool = True) -> Plan:
    """Fix the symbols and the starting fingerprint before any trade is read.

    A ledger without a column FIFO reads is refused first (without ``total_fees_usd`` unless
    ``assume_zero_fees``). A requested symbol the ledger has no order for is refused (a typo
    would otherwise write an empty version that the checks then hold against every symbol).
    The symbols whose orders did not change since the version before ``version`` (default:
    the next one) of the same scope are carried (:func:`carry_for`), not allocated, unless
    not ``carry`` (every symbol recomputed, as a forced version of an unchanged ledger is). An
    order id under two symbols or without a symbol can change what another symbol's read
    keeps, so the settings name every such id of the ledger, whatever the scope.
    """
    started = datetime.now(timezone.utc)
    store.trade_columns(assume_zero_fees=assume_zero_fees)
    fingerprint = store.fingerprint()
    present, problems = store.symbol_census()
    scope = scope_of(present, symbols)
    settings = {"assume_zero_fees": assume_zero_fees, "skip_bad_rows": skip_bad_rows,
                "ledger_problem_ids": sorted({p[0] for p in problems})}
    plan = Plan(scope, str(fingerprint), started, [] if symbols else problems,
                assume_zero_fees, {s: fingerprint.by_symbol.get(s, "") for s in scope},
                settings)
    if not carry:
        return plan
    with store.connect() as conn:
        carried = carry_for(conn, plan, version)
    if carried is None:
        return plan
    return replaced(plan, symbols=tuple(s for s in scope if s not in carried.symbols),
                    carry=carried)


def carry_for(conn: Connection, plan: Plan, version: int | None) -> Carry | None:
    """The symbols of ``plan`` whose rows version ``version`` (default: the next one) can
    copy: only from the newest version before it of the same scope (the immediate
    predecessor, never an older one), when that one was not failed, recorded its symbols
    (versions from before ``per_symbol`` did not) and was computed with the same
    :attr:`Plan.settings`; a symbol is carried when its orders' fingerprint is the one its
    rows there were computed from, its bad rows are known, and its rows are all there."""
    target = version if version is not None else versions.next_version(conn)
    previous = _predecessor(conn, plan.scope, target)
    basis = previous.per_symbol if previous is not None else None
    if (previous is None or previous.status == versions.STATUS_FAILED or not basis
            or basis["settings"] != plan.settings):
        return None
    rows = versions.symbol_row_counts(conn, previous.version)
    carried = {}
    for symbol, data in basis["symbols"].items():
        record = SymbolRecord.from_json(data)
        if (record.fingerprint and record.fingerprint == plan.symbol_fingerprints.get(symbol)
                and record.problems is not None
                and rows.get(symbol, 0) == record.allocation_count):
            carried[symbol] = record
    return (Carry(previous.version, previous.batch_id, carried, basis["scales"]) if carried
            else None)


def _predecessor(conn: Connection, scope: Sequence[str], version: int | None
                 ) -> versions.VersionInfo | None:
    """The newest logged version below ``version`` (None: of all) that covers exactly
    ``scope``."""
    before = [info for info in versions.list_versions(conn)
              if (version is None or info.version < version)
              and sorted(info.symbols) == list(scope)]
    return before[-1] if before else None


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
                     assume_zero_fees: bool = False, *, judge: bool = False
                     ) -> SymbolAllocations:
    """Read these symbols' orders and allocate them (pure FIFO); bad rows are returned, not
    allocated, so one report can name every bad row of the ledger.

    With ``judge`` (one symbol, a ledger that can digest rows: PostgreSQL 14 or later) the
    validation rules also judge the allocations against the orders just read, while both are
    in memory, and the result keeps that judgment with the fingerprint of exactly those
    orders (:func:`_judged`), so the version's checks need not read the symbol back.
    """
    if not symbols:
        return SymbolAllocations((), {}, allocate(empty_trades()), [], {})
    if judge and len(symbols) == 1 and not exclude:
        with store.connect() as conn:  # without digests a judgment could not be recorded
            judge = check_results.can_digest(conn)
    else:
        judge = False
    # One symbol read whole is allocated from its columns as read (no Decimal per value);
    # a frame that is filtered or split here keeps Decimals, which carry each value as written.
    columnar = len(symbols) == 1 and not exclude
    normalized = store.read_trades(symbols=list(symbols), assume_zero_fees=assume_zero_fees,
                                   columnar=columnar, fingerprinted=judge)
    trades, problems, read_as = normalized.trades, normalized.problems, normalized.fingerprint
    if exclude:
        trades = trades[~trades["order_id"].isin(exclude)]
    counts = trades["symbol"].value_counts()
    judgments: dict[str, tuple[str, dict[str, Any]]] = {}
    if len(symbols) == 1:
        allocations = allocate(normalized if columnar and not problems else trades)
        del normalized
        scales = {symbols[0]: decimal_scales(allocations)} if len(allocations) else {}
        if judge and read_as is not None and not problems:
            judgments = _judged(symbols[0], allocations, trades, read_as)
    else:  # each symbol alone (FIFO never crosses symbols), to see its own scales
        frames = {s: allocate(trades.iloc[rows])
                  for s, rows in sorted(trades.groupby("symbol").indices.items())}
        # their Decimal objects (~400 MiB a million orders) go before the stacking
        del trades, normalized
        allocations = concat_allocations(list(frames.values()))
        scales = {s: decimal_scales(f) for s, f in frames.items() if len(f)}
    return SymbolAllocations(tuple(symbols), {s: int(counts.get(s, 0)) for s in symbols},
                             allocations, problems,
                             _problems_by_symbol(store, symbols, problems, assume_zero_fees),
                             scales, judgments)


def _judged(symbol: str, allocations: pd.DataFrame, trades: pd.DataFrame, read_as: str
            ) -> dict[str, tuple[str, dict[str, Any]]]:
    """The symbol's judgment (keyed as :func:`recon_assets.ledger.check_results.record`
    keys it, by the fingerprint of the orders judged), or none when its wording could change
    once the rows are widened to the version's decimal places (a failing rule that names an
    amount: the checks then judge the stored rows themselves)."""
    results = recorded_form(validate_allocations(allocations, trades, normalized=True))
    return {symbol: (read_as, results)} if worded_alike_at_any_scale(results) else {}


def decimal_scales(frame: pd.DataFrame) -> dict[str, int]:
    """The scale of each Arrow decimal column of an allocations frame."""
    return {str(c): t.pyarrow_dtype.scale for c, t in frame.dtypes.items()
            if isinstance(t, pd.ArrowDtype) and pa.types.is_decimal(t.pyarrow_dtype)}


def _problems_by_symbol(store: LedgerStore, symbols: Sequence[str],
                        problems: list[tuple[str, str, str]], assume_zero_fees: bool
                        ) -> dict[str, list[tuple[str, str, str]]] | None:
    """Whose bad rows these are, so a later version can carry a symbol with its own: plain
    when there is one symbol or no bad row; else each symbol is read alone (only its bad rows
    are kept), and when that does not account for every bad row (an order id under two of
    the symbols), None: not known."""
    if len(symbols) == 1 or not problems:
        return {s: list(problems) for s in symbols}
    own = {s: store.read_trades(symbols=[s], assume_zero_fees=assume_zero_fees).problems
           for s in symbols}
    found = {p for found in own.values() for p in found}
    return own if found == set(problems) else None


def symbol_records(part: SymbolAllocations, fingerprints: Mapping[str, str]
                   ) -> dict[str, SymbolRecord]:
    """What each symbol of a part contributes to its version."""
    frame = part.allocations
    counts = frame["symbol"].value_counts()
    unmatched = frame.loc[frame["buy_order_id"].isna(), "symbol"].value_counts()
    pnl = pnl_by_symbol(frame)
    known = part.problems_by_symbol
    return {s: SymbolRecord(fingerprints.get(s), part.trade_counts.get(s, 0),
                            int(counts.get(s, 0)), int(unmatched.get(s, 0)), pnl.get(s),
                            None if known is None else tuple(known.get(s, ())),
                            part.scales.get(s, {}))
            for s in part.symbols}


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
        newest = _predecessor(conn, scope, None)
    return newest if newest is not None and newest.ledger_fingerprint == fingerprint else None


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


#: Rows of a part brought to the version's scales and written at once.
_WRITE_SLICE = 100_000


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

    The plan's carried symbols are copied from its predecessor in the same transaction,
    which must still be the version before this one of the same scope (else VersionError:
    another computation wrote meanwhile); they count in the log row as they counted there.
    """
    carried = dict(plan.carry.symbols) if plan.carry else {}
    problems = sorted(set(plan.ledger_problems).union(
        *(p.problems for p in parts), *(r.problems or () for r in carried.values())))
    if problems and not skip_bad_rows:
        raise BadRowError("ledger rows (FIFO refuses to write a version; fix them or pass "
                          "--skip-bad-rows)", problems)
    records = dict(sorted({**carried, **{s: r for p in parts for s, r in symbol_records(
        p, plan.symbol_fingerprints).items()}}.items()))
    scales = {c: max(r.scales[c] for r in records.values() if c in r.scales)
              for c in sorted({c for r in records.values() for c in r.scales})}
    # Each part at the version's scales as it is written, a slice at a time: no stacked or
    # rescaled copy of them all.
    allocations = (with_scales(p.allocations.iloc[start:start + _WRITE_SLICE], scales)
                   for p in parts for start in range(0, len(p.allocations), _WRITE_SLICE))
    by_symbol = {s: r.pnl_usd for s, r in records.items() if r.pnl_usd is not None}
    total = round_money(sum(by_symbol.values(), Decimal(0)))
    trade_count = sum(r.trade_count for r in records.values())
    allocation_count = sum(r.allocation_count for r in records.values())
    unmatched_count = sum(r.unmatched_count for r in records.values())
    symbols = list(records)
    batch_id = uuid.uuid4().hex
    with store.locked("fifo") as conn:
        number = versions.claim_version(conn, version, replace)
        finished = datetime.now(timezone.utc)
        if plan.carry is not None:
            _copy_carried(conn, plan, number, batch_id, finished, scales)
        duration_ms = int((finished - plan.started).total_seconds() * 1000)
        versions.write_version(conn, version=number, batch_id=batch_id, allocations=allocations,
                               allocation_time=finished, log={
                                   "status": versions.STATUS_COMPUTED,
                                   "started_at": plan.started, "finished_at": finished,
                                   "duration_ms": duration_ms, "trade_count": trade_count,
                                   "allocation_count": allocation_count,
                                   "unmatched_count": unmatched_count, "symbols": symbols,
                                   "total_pnl_usd": total,
                                   "ledger_fingerprint": plan.fingerprint,
                                   "skipped_rows": [list(p) for p in problems],
                                   "per_symbol": {
                                       "settings": plan.settings, "scales": scales,
                                       "symbols": {s: r.to_json() for s, r in records.items()},
                                       "carried_from": (plan.carry.version if plan.carry
                                                        else None),
                                       "carried": sorted(carried)},
                               })
        _record_judgments(conn, number, parts)
        finish(conn)
    copied = f" ({len(carried)} symbols copied from version {plan.carry.version})" if (
        plan.carry) else ""
    log(f"wrote FIFO version {number}: {allocation_count} allocations over {trade_count} "
        f"orders, {unmatched_count} unmatched, total PnL {decimal_str(total)}{copied}")
    return VersionSummary(
        version=number, batch_id=batch_id, trade_count=trade_count,
        allocation_count=allocation_count, unmatched_count=unmatched_count,
        total_pnl_usd=total, pnl_by_symbol=by_symbol, symbols=symbols,
        ledger_fingerprint=plan.fingerprint, skipped_rows=problems, duration_ms=duration_ms)


def _record_judgments(conn: Connection, number: int, parts: Sequence[SymbolAllocations]
                      ) -> None:
    """Record the judgments the parts made of their symbols (:func:`allocate_symbols` with
    ``judge``) under the digests of those symbols' rows as version ``number`` now holds them,
    in the transaction that wrote them: the version's checks then find the symbols judged
    and do not read them back, as they do not for a symbol copied from the version before."""
    judged = {s: j for p in parts for s, j in p.judgments.items()}
    digests = check_results.symbol_digests(conn, number, ALLOCATION_INPUTS,
                                           sorted(judged)) if judged else None
    if digests is None:
        return
    check_results.record(conn, {s: (digests.get(s, check_results.NO_ROWS), read_as, results)
                                for s, (read_as, results) in judged.items()}, RULES_REVISION)


def _copy_carried(conn: Connection, plan: Plan, number: int, batch_id: str,
                  finished: datetime, scales: Mapping[str, int]) -> None:
    """Copy the carried symbols' rows into version ``number`` (under the ledger lock), each
    decimal column brought to the version's scale (exact: never below a symbol's own). The
    plan counted the rows in the predecessor; its batch id, checked here, says it is the
    same version still (a version's rows change only when it is replaced, with a new id)."""
    carry = plan.carry
    previous = _predecessor(conn, plan.scope, number)
    if previous is None or (previous.version, previous.batch_id) != (carry.version,
                                                                      carry.batch_id):
        raise VersionError(f"version {carry.version}, which version {number} copies unchanged "
                           "symbols from, is no longer the version before it of the same "
                           "scope (another computation wrote meanwhile); nothing written, "
                           "compute again")
    rescale = {c: (carry.scales[c], scales[c]) for c in scales
               if c in carry.scales and carry.scales[c] != scales[c]}
    versions.copy_symbols(conn, source=carry.version, version=number, batch_id=batch_id,
                          allocation_time=finished, symbols=sorted(carry.symbols),
                          rescale=rescale)


def with_scales(frame: pd.DataFrame, scales: Mapping[str, int]) -> pd.DataFrame:
    """The frame with each decimal column widened to the scale given for it (exact)."""
    cast = {}
    for column, scale in scales.items():
        kind = frame[column].dtype
        if isinstance(kind, pd.ArrowDtype) and kind.pyarrow_dtype.scale != scale:
            cast[column] = pd.ArrowDtype(pa.decimal128(kind.pyarrow_dtype.precision, scale))
    return frame.astype(cast) if cast else frame


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
                    carry: bool = True,
                    log: Callable[[str], None] = lambda _m: None) -> VersionSummary:
    """Plan, allocate and write a version in one process (the fan-out's steps in sequence).

    With ``only_if_changed`` the latest version is reused when it was computed from the
    ledger as it is now (same fingerprint), as the weekly schedule wants.
    ``assume_zero_fees`` allows a ledger without ``total_fees_usd`` (see :func:`plan_version`).
    ``carry=False`` recomputes every symbol, even those unchanged since the version before.
    """
    plan = plan_version(store, symbols, assume_zero_fees, version=version,
                        skip_bad_rows=skip_bad_rows, carry=carry)
    if only_if_changed and version is None:
        same = unchanged_since(store, plan.fingerprint, symbols)
        if same is not None:
            log(f"ledger unchanged since version {same.version}; not recomputing")
            return stored_summary(same)
    log(f"allocating {len(plan.symbols)} symbols" + (
        f", copying {len(plan.carry.symbols)} unchanged since version {plan.carry.version}"
        if plan.carry else ""))
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


def load_version(store: LedgerStore, info: versions.VersionInfo,
                 conn: Connection | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A version's allocations and the ledger trades of its symbols (for validation), on
    ``conn`` when given (a snapshot).

    A ledger without ``total_fees_usd`` is read with zero fees: a version over it exists only
    because the user assumed them, and validation judges that version as computed.
    """
    with store.using(conn) as conn:
        allocations = versions.read_allocations(conn, info.version, columnar=True,
                                                columns=ALLOCATION_INPUTS)
        trades = store.read_trades(symbols=info.symbols or None, assume_zero_fees=True,
                                   conn=conn, columnar=True).trades
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
    return replaced(diff_versions(old_rows, new_rows), old_version=old, new_version=new)
