"""FIFO versions in the ledger: ``fifo_allocations`` rows plus one ``fifo_computation_log`` row.

A version is written in one transaction under the ledger lock (so two recomputes get distinct
numbers and never interleave) and is immutable once validated (SPEC section 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from sqlalchemy import (Connection, Integer, Text, delete, func, insert, literal, select, text,
                        update)

from recon_assets.errors import VersionError
from recon_assets.fifo.version_diff import PIECE_VALUES, StoredDiff
from recon_assets.ledger.check_results import can_digest, digest, digest_terms
from recon_assets.ledger.bulk import (can_copy, clean_row, copy_frames, copy_out,
                                      decimal_objects)
from recon_assets.ledger.schema import (ExactDecimal, UtcDateTime, fifo_allocations,
                                        fifo_computation_log)

STATUS_COMPUTED = "computed"
STATUS_VALIDATED = "validated"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class VersionInfo:
    """One ``fifo_computation_log`` row."""

    version: int
    batch_id: str
    status: str
    trade_count: int
    allocation_count: int
    unmatched_count: int
    total_pnl_usd: Decimal | None
    symbols: list[str]
    ledger_fingerprint: str | None
    started_at: datetime
    finished_at: datetime | None
    skipped_rows: list[Any]
    #: What each symbol contributed and the ledger it was computed from (JSON written by
    #: ``recon_assets.fifo.service.write_computed``); None for versions written before it was kept.
    per_symbol: dict[str, Any] | None = None


def next_version(conn: Connection) -> int:
    """One more than the highest version in the log or in the allocations."""
    logged = conn.execute(select(func.max(fifo_computation_log.c.allocation_version))).scalar()
    stored = conn.execute(select(func.max(fifo_allocations.c.allocation_version))).scalar()
    return max(logged or 0, stored or 0) + 1


def get_version(conn: Connection, version: int) -> VersionInfo | None:
    row = conn.execute(select(fifo_computation_log).where(
        fifo_computation_log.c.allocation_version == version)).mappings().first()
    return _info(row) if row else None


def latest_version(conn: Connection, *, statuses: Sequence[str] | None = None) -> VersionInfo | None:
    """The highest logged version, optionally only among ``statuses``."""
    query = select(fifo_computation_log).order_by(
        fifo_computation_log.c.allocation_version.desc()).limit(1)
    if statuses:
        query = query.where(fifo_computation_log.c.status.in_(list(statuses)))
    row = conn.execute(query).mappings().first()
    return _info(row) if row else None


def list_versions(conn: Connection) -> list[VersionInfo]:
    rows = conn.execute(select(fifo_computation_log).order_by(
        fifo_computation_log.c.allocation_version)).mappings().all()
    return [_info(r) for r in rows]


def _info(row: Any) -> VersionInfo:
    return VersionInfo(
        version=row["allocation_version"], batch_id=row["allocation_batch_id"],
        status=row["status"], trade_count=row["trade_count"],
        allocation_count=row["allocation_count"], unmatched_count=row["unmatched_count"],
        total_pnl_usd=row["total_pnl_usd"], symbols=list(row["symbols"] or []),
        ledger_fingerprint=row["ledger_fingerprint"], started_at=row["started_at"],
        finished_at=row["finished_at"], skipped_rows=list(row["skipped_rows"] or []),
        per_symbol=row["per_symbol"],
    )


def claim_version(conn: Connection, requested: int | None, replace: bool) -> int:
    """Pick the version to write and clear it when replacing; call under the ledger lock.

    ``requested=None`` takes max + 1. An existing version needs ``replace``; a validated one
    cannot be replaced at all, because reports may already rely on it.
    """
    if requested is None:
        return next_version(conn)
    if requested < 1:
        raise VersionError(f"version must be a positive integer, got {requested}")
    existing = get_version(conn, requested)
    has_rows = conn.execute(select(func.count()).select_from(fifo_allocations).where(
        fifo_allocations.c.allocation_version == requested)).scalar()
    if existing is None and not has_rows:
        return requested
    if not replace:
        raise VersionError(f"version {requested} exists; pass --replace to recompute it")
    if existing is not None and existing.status == STATUS_VALIDATED:
        raise VersionError(f"version {requested} is validated and immutable; "
                           "compute a new version instead")
    conn.execute(delete(fifo_allocations).where(
        fifo_allocations.c.allocation_version == requested))
    conn.execute(delete(fifo_computation_log).where(
        fifo_computation_log.c.allocation_version == requested))
    return requested


def write_version(conn: Connection, *, version: int, batch_id: str,
                  allocations: Iterable[pd.DataFrame], allocation_time: datetime,
                  log: dict[str, Any]) -> int:
    """Insert a version's rows, frame after frame, and its log entry (in the caller's
    transaction); return rows.

    ``allocations`` may be a generator: each frame is written before the next is asked for,
    so a version of many parts never exists twice in memory. On PostgreSQL through psycopg 3
    the rows go in with one COPY (:func:`recon_assets.ledger.bulk.copy_frames`); elsewhere
    (SQLite, psycopg2) as an executemany in batches of 10,000. The stored rows are the same
    either way.
    """
    fixed = {"allocation_time": allocation_time, "allocation_version": version,
             "allocation_batch_id": batch_id}
    columns = [c for c in fifo_allocations.columns if c.name != "id"]
    if can_copy(conn):
        written = copy_frames(conn, fifo_allocations.name, columns, allocations,
                              constants=fixed)
    else:
        written = 0
        for frame in allocations:
            written += len(frame)
            records = frame.assign(**fixed)[[c.name for c in columns]]
            rows = [clean_row(r) for r in records.to_dict("records")]
            for start in range(0, len(rows), 10_000):
                conn.execute(insert(fifo_allocations), rows[start:start + 10_000])
    conn.execute(insert(fifo_computation_log).values(
        allocation_version=version, allocation_batch_id=batch_id, **log))
    return written


def copy_symbols(conn: Connection, *, source: int, version: int, batch_id: str,
                 allocation_time: datetime, symbols: Sequence[str],
                 rescale: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Copy these symbols' rows of version ``source`` into ``version`` in the database (one
    ``INSERT ... SELECT``, nothing crosses the wire), with the new version, batch id and
    allocation time; in the caller's transaction. ``rescale`` maps a decimal column to the
    scale every value of it has in ``source`` and the one it gets (trailing zeros only)."""
    table = fifo_allocations
    fixed: dict[str, Any] = {"allocation_time": literal(allocation_time, UtcDateTime()),
                             "allocation_version": literal(version, Integer()),
                             "allocation_batch_id": literal(batch_id, Text())}
    for column, (old, new) in (rescale or {}).items():
        fixed[column] = _rescaled(conn, table.c[column], old, new)
    columns = [c for c in table.columns if c.name != "id"]
    rows = select(*[fixed.get(c.name, c) for c in columns]).where(
        table.c.allocation_version == source, table.c.symbol.in_(list(symbols))
    ).order_by(table.c.id)
    conn.execute(insert(table).from_select([c.name for c in columns], rows))


def _rescaled(conn: Connection, column: Any, old: int, new: int) -> Any:
    """``column``, whose every value has ``old`` decimal places, with ``new`` places: NUMERIC
    is rounded to them (exact, zeros only come or go); SQLite's decimal text is padded with
    zeros or cut."""
    if conn.dialect.name == "postgresql":
        return func.round(column, new)
    if new > old:
        return column.op("||")(literal(("." if old == 0 else "") + "0" * (new - old), Text()))
    cut = old - new + (1 if new == 0 else 0)
    return func.substr(column, 1, func.length(column) - cut)


def symbol_row_counts(conn: Connection, version: int) -> dict[str, int]:
    """Rows per symbol of one version (read from the version/symbol index)."""
    table = fifo_allocations
    return dict(conn.execute(select(table.c.symbol, func.count()).where(
        table.c.allocation_version == version).group_by(table.c.symbol)).all())


def set_status(conn: Connection, version: int, status: str) -> None:
    """Record the outcome of validation; a validated version never goes back."""
    conn.execute(update(fifo_computation_log).where(
        fifo_computation_log.c.allocation_version == version,
        fifo_computation_log.c.status != STATUS_VALIDATED,
    ).values(status=status))


def read_allocations(conn: Connection, version: int, symbols: Sequence[str] | None = None,
                     *, unmatched_sells_only: bool = False, columnar: bool = False,
                     columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of one version, exact, in insertion order; with ``unmatched_sells_only`` just the
    rows of sells that have an unmatched remainder (cheap on a large version); with
    ``columns`` only those (a reader that needs no ids or batch fields reads a fifth less).

    Money is Decimal objects (``None`` where missing). On PostgreSQL (psycopg 3) the rows
    come by COPY into Arrow (:func:`recon_assets.ledger.bulk.copy_out`), and ``columnar``
    keeps money there as Arrow decimal columns, for readers that compute on whole columns
    (:func:`recon_assets.fifo.columns.exact`) and need no object per value.
    """
    table = fifo_allocations
    chosen = [table.c[name] for name in columns] if columns else list(table.columns)
    query = select(*chosen).where(table.c.allocation_version == version).order_by(table.c.id)
    if symbols:
        query = query.where(table.c.symbol.in_(list(symbols)))
    if unmatched_sells_only:
        query = query.where(table.c.sell_order_id.in_(
            select(table.c.sell_order_id).where(table.c.allocation_version == version,
                                                table.c.buy_order_id.is_(None))))
    if can_copy(conn):
        frame = copy_out(conn, query, chosen)
        if not columnar:
            for column in chosen:
                if isinstance(column.type, ExactDecimal):
                    frame[column.name] = decimal_objects(frame[column.name])
        return frame
    rows = conn.execute(query).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in chosen])
    for column in chosen:
        if isinstance(column.type, UtcDateTime):
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True)
    return frame


def daily_sums(conn: Connection, version: int) -> pd.DataFrame | None:
    """Per (UTC sell day, symbol) of a version's matched rows, summed by PostgreSQL: the
    sells, the allocated size and the PnL (NUMERIC sums are exact, at the most places of
    their terms, as adding Decimals gives), ordered by day and symbol. None on other
    databases (SQLite holds money as text): the caller sums the rows itself
    (:func:`recon_assets.fifo.reports.daily_pnl`)."""
    if conn.dialect.name != "postgresql":
        return None
    table = fifo_allocations
    day = func.date(func.timezone("UTC", table.c.sell_time)).label("day")
    query = (select(day, table.c.symbol, func.count(table.c.sell_order_id.distinct())
                    .label("sells"), func.sum(table.c.allocated_size).label("allocated_size"),
                    func.sum(table.c.pnl_usd).label("pnl_usd"))
             .where(table.c.allocation_version == version, table.c.buy_order_id.is_not(None))
             .group_by(day, table.c.symbol).order_by(day, table.c.symbol))
    rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=["day", "symbol", "sells", "allocated_size", "pnl_usd"])


#: The pieces of a version, keyed as the diff compares them (an unmatched piece: buy "").
_PIECES = ("SELECT sell_order_id, coalesce(buy_order_id, '') AS buy_key, "
           f"{', '.join(PIECE_VALUES)} FROM fifo_allocations WHERE allocation_version = "
           "{version}{only}")
#: What the diff compares of a row: a symbol whose rows agree on these in both versions has
#: nothing to show.
_COMPARED = ["sell_order_id", "buy_order_id", *PIECE_VALUES]
#: The passes below look only at the symbols whose rows differ, when that is known.
_ONLY = " AND symbol = ANY(:apart)"


def _shares_ids(conn: Connection, old: int, new: int, apart: list[str]) -> bool:
    """Whether an order id of the ``apart`` symbols' rows is in another symbol's rows too
    (then the passes over ids and sells must see every row to count it right)."""
    if not apart:
        return False
    return bool(conn.execute(text(
        "WITH ids AS (SELECT sell_order_id AS id FROM fifo_allocations WHERE "
        f"allocation_version IN (:old, :new){_ONLY} UNION SELECT buy_order_id FROM "
        f"fifo_allocations WHERE allocation_version IN (:old, :new){_ONLY} AND buy_order_id "
        "IS NOT NULL) SELECT EXISTS (SELECT 1 FROM fifo_allocations WHERE allocation_version "
        "IN (:old, :new) AND NOT symbol = ANY(:apart) AND (sell_order_id IN (SELECT id FROM "
        "ids) OR buy_order_id IN (SELECT id FROM ids)))"),
        {"old": old, "new": new, "apart": apart}).scalar())


def diff_in_database(conn: Connection, old: int, new: int) -> StoredDiff | None:
    """Compare versions ``old`` and ``new`` where they are stored, on PostgreSQL: one full
    join of their pieces finds the changed sells (NUMERIC compares exactly), and only those
    sells' rows and the per-symbol sums cross the wire (a version against itself skips the
    join and the passes over sells and ids: nothing changed). The join and the passes see only
    the symbols whose rows differ by their digests, unless an id of those rows is under
    another symbol too (:func:`_shares_ids`): a symbol a version copied from the other,
    untouched since, has nothing to compare. None elsewhere (SQLite holds money as
    text): the caller compares the rows (:func:`recon_assets.fifo.version_diff.diff_versions`).
    """
    if conn.dialect.name != "postgresql":
        return None
    params: dict[str, Any] = {"old": old, "new": new}
    # One pass per (version, symbol): the PnL sums and, where the server can, the digest of
    # the compared values (each decimal with its scale; see check_results.symbol_digests).
    digests = old != new and can_digest(conn)
    sums: dict[int, dict[str, Decimal]] = {old: {}, new: {}}
    seen: dict[int, dict[str, str]] = {old: {}, new: {}}
    terms = f", {digest_terms(_COMPARED)}" if digests else ""
    for version, symbol, total, *rest in conn.execute(text(
            f"SELECT allocation_version, symbol, sum(pnl_usd){terms} FROM fifo_allocations "
            "WHERE allocation_version IN (:old, :new) GROUP BY 1, 2"), params):
        sums[version][symbol] = Decimal(0) if total is None else total
        if rest:
            seen[version][symbol] = digest(*rest)
    apart = sorted(s for s in set(seen[old]) | set(seen[new])
                   if seen[old].get(s) != seen[new].get(s)) if digests else None
    if apart is not None and _shares_ids(conn, old, new, apart):
        apart = None
    only = "" if apart is None else _ONLY
    if apart is not None:
        params["apart"] = apart
    a, b = (_PIECES.format(version=v, only=only) for v in (":old", ":new"))
    differ = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in PIECE_VALUES)
    changed = [] if old == new else list(conn.execute(text(
        f"SELECT DISTINCT coalesce(a.sell_order_id, b.sell_order_id) FROM ({a}) a FULL JOIN "
        f"({b}) b ON a.sell_order_id = b.sell_order_id AND a.buy_key = b.buy_key "
        f"WHERE a.sell_order_id IS NULL OR b.sell_order_id IS NULL OR {differ}"),
        params).scalars())
    table = fifo_allocations
    both = table.c.allocation_version.in_([old, new])
    # One pass over each version's sells and one over its order ids: only the ids whose
    # presence (or a sell's unmatched part) differs between the versions come back (none
    # when a version is compared with itself, so those passes are skipped then).
    sells = [] if old == new else conn.execute(text(
        "SELECT sell_order_id, bool_or(allocation_version = :old), "
        "bool_or(allocation_version = :new), "
        "bool_or(allocation_version = :old AND buy_order_id IS NULL), "
        "bool_or(allocation_version = :new AND buy_order_id IS NULL) FROM fifo_allocations "
        f"WHERE allocation_version IN (:old, :new){only} GROUP BY sell_order_id HAVING "
        "bool_or(allocation_version = :old) <> bool_or(allocation_version = :new) OR "
        "bool_or(allocation_version = :old AND buy_order_id IS NULL) <> "
        "bool_or(allocation_version = :new AND buy_order_id IS NULL)"), params).all()
    ids = [] if old == new else conn.execute(text(
        "SELECT id, bool_or(v = :old), bool_or(v = :new) FROM (SELECT sell_order_id AS id, "
        "allocation_version AS v FROM fifo_allocations WHERE allocation_version IN (:old, :new)"
        f"{only} UNION ALL SELECT buy_order_id, allocation_version FROM fifo_allocations "
        f"WHERE allocation_version IN (:old, :new){only} AND buy_order_id IS NOT NULL) o "
        "GROUP BY id HAVING bool_or(v = :old) <> bool_or(v = :new)"), params).all()
    one_side = {s for s, was, now, _, _ in sells if was != now}
    changed = [s for s in changed if s not in one_side]  # sells of both versions only
    rows = pd.DataFrame(conn.execute(
        select(table.c.allocation_version, table.c.sell_order_id, table.c.buy_order_id,
               table.c.symbol, table.c.allocated_size, table.c.pnl_usd)
        .where(both, table.c.sell_order_id.in_(changed)).order_by(table.c.id)).all(),
        columns=["allocation_version", "sell_order_id", "buy_order_id", "symbol",
                 "allocated_size", "pnl_usd"], dtype=object)

    return StoredDiff(
        pnl_by_symbol=sums, changed_sells=changed,
        changed_rows={v: rows[rows["allocation_version"] == v] for v in (old, new)},
        newly_matched=[s for s, was, now, open_, still in sells
                       if was and now and open_ and not still],
        newly_unmatched=[s for s, _, _, open_, still in sells if still and not open_],
        added_sells=[s for s, was, now, _, _ in sells if now and not was],
        removed_sells=[s for s, was, now, _, _ in sells if was and not now],
        causing_orders=[i for i, was, now in ids if now and not was],
        dropped_orders=[i for i, was, now in ids if was and not now])
