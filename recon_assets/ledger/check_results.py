"""Recorded validation results per symbol (``fifo_check_results``), and the digests they are
keyed by.

A symbol's validation depends only on its rows of the version and its orders in the ledger
(when no order id is under two symbols), so the result of judging them holds wherever the same
rows meet the same orders again: in a version that copied the symbol's rows from the version
before, or in the same version validated again by the weekly schedule. The rows are known by a
digest the database computes in one pass, without formatting a value: per symbol, the row
count and the exact sum of each row's 64-bit ``hash_record_extended`` over every column the
rules read, each decimal with its scale (``1.5`` and ``1.50`` are judged alike but worded
apart). A row changed in place, added or removed changes the digest, so such rows are judged
afresh. PostgreSQL 14 or later only: elsewhere validation reads the whole version.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from sqlalchemy import Connection, select, text, tuple_

from recon_assets.ledger.bulk import insert_new
from recon_assets.ledger.schema import ExactDecimal, fifo_allocations, fifo_check_results

#: ``hash_record_extended`` is there from this server version on.
_MIN_SERVER = 140000


def can_digest(conn: Connection) -> bool:
    """Whether the database computes :func:`digest_terms` (PostgreSQL 14 or later)."""
    return conn.dialect.name == "postgresql" and (
        conn.dialect.server_version_info or (0,))[0] * 10000 >= _MIN_SERVER


def digest_terms(columns: Sequence[str]) -> str:
    """The two aggregates of a digest over these ``fifo_allocations`` columns, for a query
    grouped by symbol (see :func:`digest`)."""
    values = []
    for name in columns:
        values.append(name)
        if isinstance(fifo_allocations.c[name].type, ExactDecimal):
            values.append(f"scale({name})")
    return f"count(*), sum(hash_record_extended(ROW({', '.join(values)}), 0))"


def digest(count: int, total: object) -> str:
    """A digest as :func:`digest_terms`' two aggregates give it."""
    return f"{count}:{total}"


def digest_rows(value: str) -> int:
    """How many rows a :func:`digest` is of."""
    return int(value.split(":", 1)[0])


#: What a symbol without rows in a version is recorded under (:func:`symbol_digests` has none).
NO_ROWS = digest(0, 0)


def symbol_digests(conn: Connection, version: int, columns: Sequence[str],
                   symbols: Sequence[str] | None = None) -> dict[str, str] | None:
    """Symbol -> the digest of version ``version``'s rows of it over ``columns`` (only of
    ``symbols`` when given); None where the database cannot compute it."""
    if not can_digest(conn):
        return None
    only = " AND symbol = ANY(:symbols)" if symbols is not None else ""
    rows = conn.execute(text(
        f"SELECT symbol, {digest_terms(columns)} FROM fifo_allocations "
        f"WHERE allocation_version = :v{only} GROUP BY symbol"),
        {"v": version, **({"symbols": list(symbols)} if symbols is not None else {})}).all()
    return {symbol: digest(count, total) for symbol, count, total in rows}


def recorded(conn: Connection, keys: Mapping[str, tuple[str, str]], revision: int
             ) -> dict[str, Any]:
    """The recorded results (as :func:`record` stored them) of the symbols whose (rows
    digest, ledger fingerprint) under ``revision`` were judged before."""
    if not keys:
        return {}
    table = fifo_check_results
    wanted = [(symbol, digest, ledger) for symbol, (digest, ledger) in keys.items()]
    found = conn.execute(select(table.c.symbol, table.c.results).where(
        table.c.rules_revision == revision,
        tuple_(table.c.symbol, table.c.rows_digest, table.c.ledger_fingerprint).in_(wanted)))
    return {symbol: results for symbol, results in found}


def record(conn: Connection, entries: Mapping[str, tuple[str, str, Any]], revision: int
           ) -> None:
    """Keep each symbol's results under its (rows digest, ledger fingerprint); a key already
    recorded (another validation of the same rows) is left as it is."""
    if not entries:
        return
    now = datetime.now(timezone.utc)
    insert_new(conn, fifo_check_results, [
        {"symbol": symbol, "rows_digest": digest, "ledger_fingerprint": ledger,
         "rules_revision": revision, "results": results, "recorded_at": now}
        for symbol, (digest, ledger, results) in entries.items()])
