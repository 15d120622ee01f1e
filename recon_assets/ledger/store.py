"""``LedgerStore``: the one gateway to the ledger database (SQLite or PostgreSQL).

It owns the engine, creates recon-assets' tables where they are missing (never altering the
bot's ``trade_records``), and reads ``trade_records`` exactly: whatever the column types, money
is converted by :func:`recon_assets.money.to_decimal`, never through binary floats.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import (BigInteger, Column, Connection, Engine, Text, create_engine, event,
                        inspect, text)
from sqlalchemy.exc import SQLAlchemyError

from recon_assets.errors import ConcurrencyError, LedgerError
from recon_assets.ledger import schema
from recon_assets.ledger.bulk import can_copy, copy_out
from recon_assets.ledger.fingerprint import (LedgerFingerprint, ledger_fingerprint, pg_row_hash,
                                             register_sqlite_functions, rows_fingerprint)
from recon_assets.ledger.trade_reads import (check_columns, mark_out_of_range_times,
                                             read_expressions)
from recon_assets.settings import normalize_database_url
from recon_assets.trades import (TRADE_COLUMNS, NormalizedTrades, normalize_trades,
                                 normalize_trades_scaled)

#: What a failed read or write raises: through SQLAlchemy, or from psycopg itself where the
#: ledger's COPY runs on the driver's own connection (:mod:`recon_assets.ledger.bulk`).
DATABASE_ERRORS = (SQLAlchemyError, psycopg.Error)

#: The result column of a fingerprinted read that holds each row's fingerprint hash.
_ROW_HASH = "recon_row_fingerprint_hash"
#: Rows fetched at a time when reading ``trade_records`` (a server-side cursor on PostgreSQL).
_READ_CHUNK = 100_000


def _driver_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (SQLAlchemy's default is psycopg2)."""
    url = normalize_database_url(url)
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and errors."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as its scheme only
        return url.split(":", 1)[0] + "://…"


class LedgerStore:
    """Reads and writes the ledger; every write is one transaction."""

    def __init__(self, url: str, *, engine: Engine | None = None):
        self.url = normalize_database_url(url)
        try:
            self.engine = engine or create_engine(_driver_url(self.url), future=True)
        except Exception as exc:  # bad URL, missing driver
            raise LedgerError(f"cannot open ledger {redact_url(self.url)}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction; database failures become :class:`LedgerError` naming the ledger."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except DATABASE_ERRORS as exc:
            raise LedgerError(f"ledger {self.display_url}: {_short(exc)}") from exc

    @contextlib.contextmanager
    def locked(self, name: str, timeout: float = 300.0) -> Iterator[Connection]:
        """A transaction holding the ledger-wide lock ``name`` (e.g. ``"fifo"``, ``"backfill"``).

        PostgreSQL: a transaction-scoped advisory lock, so it is released by commit, rollback or
        a killed process alike; keyed by ``name`` and the ledger's schema, so ledgers in other
        schemas of the same database do not wait for each other. SQLite: a lock file beside
        the database. Waits up to ``timeout`` seconds, then raises :class:`ConcurrencyError`.
        """
        if self.dialect == "postgresql":
            key = zlib.crc32(f"recon-assets:{name}".encode())
            key -= 2 ** 32 if key >= 2 ** 31 else 0  # the two-key form takes int4 keys
            deadline = time.monotonic() + timeout
            with self.begin() as conn:
                while not conn.execute(text(
                        "SELECT pg_try_advisory_xact_lock(:k, "
                        "hashtext(coalesce(current_schema(), '')))"), {"k": key}).scalar():
                    if time.monotonic() > deadline:
                        raise ConcurrencyError(
                            f"another recon-assets {name} holds the ledger lock; gave up after "
                            f"{timeout:.0f}s")
                    time.sleep(0.2)
                yield conn
            return
        from filelock import FileLock, Timeout

        db_path = self.engine.url.database or "memory"
        try:
            with FileLock(f"{db_path}.{name}.lock", timeout=timeout):
                with self.begin() as conn:
                    yield conn
        except Timeout:
            raise ConcurrencyError(f"another recon-assets {name} holds the ledger lock "
                                   f"({db_path}.{name}.lock); gave up after {timeout:.0f}s"
                                   ) from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DATABASE_ERRORS as exc:
            raise LedgerError(f"ledger {self.display_url}: {_short(exc)}") from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One connection whose reads all see the ledger as of the first of them (REPEATABLE
        READ on PostgreSQL; a SQLite read transaction is one already), for results that must
        not mix two states of the ledger."""
        with self.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn

    @contextlib.contextmanager
    def using(self, conn: Connection | None) -> Iterator[Connection]:
        """``conn`` when given (a snapshot), else a connection of its own."""
        if conn is not None:
            yield conn
            return
        with self.connect() as own:
            yield own

    # -- schema -----------------------------------------------------------------------------

    def ensure_schema(self) -> list[str]:
        """Create the tables that are missing and migrate recon-assets' own tables to the
        newest revision (:mod:`recon_assets.migrations`); return the created tables' names.

        ``trade_records`` is only ever created, never altered. Under the ``schema`` lock, so
        two processes starting at once do not both create or migrate.
        """
        if self.dialect == "sqlite":
            db_path = self.engine.url.database
            if db_path and db_path != ":memory:":
                from pathlib import Path

                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        from recon_assets import migrations

        with self.locked("schema") as conn:
            insp = inspect(conn)  # a view named trade_records is the bot's read-only ledger
            existing = set(insp.get_table_names()) | set(insp.get_view_names())
            missing = [t for t in schema.metadata.sorted_tables if t.name not in existing]
            schema.metadata.create_all(conn, tables=missing, checkfirst=True)
            migrations.upgrade(conn, fresh=not existing & {t.name for t in schema.OWN_TABLES})
        return [t.name for t in missing]

    def table_columns(self, table: str) -> dict[str, str]:
        """Column name -> database type name of an existing table or view (empty if there is
        neither)."""
        with self.connect() as conn:
            insp = inspect(conn)
            if table not in insp.get_table_names() and table not in insp.get_view_names():
                return {}
            return {c["name"]: _type_name(c["type"]) for c in insp.get_columns(table)}

    # -- trade_records ---------------------------------------------------------------------

    def trade_columns(self, *, assume_zero_fees: bool = False) -> dict[str, str]:
        """The columns of ``trade_records``, once it is known FIFO can read it (see
        :func:`~recon_assets.ledger.trade_reads.check_columns`)."""
        cols = self.table_columns("trade_records")
        if not cols:
            raise LedgerError(f"ledger {self.display_url} has no trade_records table")
        check_columns(cols, assume_zero_fees=assume_zero_fees)
        return cols

    def read_trades(self, *, symbols: Sequence[str] | None = None,
                    start: datetime | None = None, end: datetime | None = None,
                    assume_zero_fees: bool = False, conn: Connection | None = None,
                    columnar: bool = False, fingerprinted: bool = False) -> NormalizedTrades:
        """Read ``trade_records`` (optionally filtered) as a normalized, exact trades frame.

        With ``columnar`` the money columns stay exact Arrow decimal columns where every row
        reads cleanly (:func:`recon_assets.trades.normalize_trades_scaled`), for readers that
        compute on whole columns: no ``Decimal`` object per value (about 2 s and 300 MiB for
        a million orders); otherwise, and for any row that needs a closer look, ``Decimal``s.

        The query names only the columns SPEC section 2 lists, so extra BotTrader columns are
        ignored; values reach the per-row checks as stored (see
        :mod:`recon_assets.ledger.trade_reads`: NaN is not NULL, a time outside years 1-9999
        is a bad row, not a driver error), and double-precision money comes back as its
        shortest decimal. Rows are fetched and framed 100,000 at a time, which keeps the
        memory of a million-row read to about the frame's own. A ledger without a column
        FIFO reads raises :class:`~recon_assets.ledger.trade_reads.MissingColumnError`
        (without ``total_fees_usd``, unless ``assume_zero_fees``).

        With ``fingerprinted`` (PostgreSQL) each row's fingerprint hash is read beside it, so
        the result's ``fingerprint`` is that of exactly the rows read, of the same moment: a
        judgment of one symbol's orders can be recorded under what it judged.
        """
        cols = self.trade_columns(assume_zero_fees=assume_zero_fees)
        select_cols = [c for c in TRADE_COLUMNS if c in cols]
        exprs = read_expressions(self.dialect, cols, select_cols)
        fingerprinted = fingerprinted and self.dialect == "postgresql"
        if fingerprinted:
            exprs[_ROW_HASH] = f"{pg_row_hash(cols)} AS {_ROW_HASH}"
        names = list(exprs)
        sql = f"SELECT {', '.join(exprs.values())} FROM trade_records"
        where, params = [], {}
        if symbols:
            marks = [f":s{i}" for i in range(len(symbols))]
            where.append(_symbol_filter(self.dialect, marks))
            params.update({f"s{i}": s for i, s in enumerate(symbols)})
        if start is not None:
            where.append("order_time >= :start")
            params["start"] = self._time_param(start)
        if end is not None:
            where.append("order_time <= :end")
            params["end"] = self._time_param(end)
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self.using(conn) as conn:
            if self.dialect == "postgresql":  # floats as their shortest exact text
                conn.execute(text("SET LOCAL extra_float_digits = 1"))
            if can_copy(conn):  # every value as its text, in Arrow: no object per value
                raw = copy_out(conn, text(sql).bindparams(**params),
                               [Column(name, BigInteger if name == _ROW_HASH else Text)
                                for name in names])
            else:
                result = conn.execution_options(stream_results=True).execute(text(sql), params)
                # Chunk by chunk, so a million rows never exist as row objects all at once.
                chunks = [pd.DataFrame.from_records(rows, columns=names)
                          for rows in result.partitions(_READ_CHUNK)]
                raw = (pd.concat(chunks, ignore_index=True) if chunks
                       else pd.DataFrame(columns=names))
        hashes = raw.pop(_ROW_HASH).to_numpy(dtype=np.int64) if fingerprinted else None
        normalize = normalize_trades_scaled if columnar else normalize_trades
        normalized = normalize(mark_out_of_range_times(raw), plausible=True)
        return (dataclasses.replace(normalized, fingerprint=rows_fingerprint(hashes))
                if hashes is not None else normalized)

    def symbol_census(self) -> tuple[list[str], list[tuple[str, str, str]]]:
        """The symbols of ``trade_records`` (trimmed, as reads normalize them), and the rows
        that no per-symbol read can judge: no symbol, or an order id seen more than once.

        Problems are worded as :func:`recon_assets.trades.normalize_trades` words them, so a
        row reported both ways is reported once. A table whose primary key or unique index is
        ``order_id`` alone (BotTrader's) cannot hold an id twice, so it is not grouped by id
        (the costliest pass over a large ledger, made by every plan).
        """
        with self.connect() as conn:
            symbols = sorted(str(s).strip() for s in conn.execute(text(
                "SELECT DISTINCT symbol FROM trade_records WHERE symbol IS NOT NULL"))
                .scalars() if str(s).strip())
            blank = conn.execute(text(
                "SELECT order_id, symbol FROM trade_records "
                "WHERE symbol IS NULL OR TRIM(symbol) = ''")).all()
            twice = self.ids_seen_twice(conn)
        problems = [(str(oid), "symbol", f"missing or not text: {sym!r}") for oid, sym in blank]
        problems += [(str(oid), "order_id", "duplicate order id") for oid in twice]
        return sorted(set(symbols)), problems

    def ids_seen_twice(self, conn: Connection | None = None) -> list[str]:
        """The order ids of more than one row (none without a look where the table's own key
        keeps them unique)."""
        with self.using(conn) as conn:
            if _unique_order_ids(conn):
                return []
            return [str(i) for i in conn.execute(text(
                "SELECT order_id FROM trade_records GROUP BY order_id "
                "HAVING COUNT(*) > 1")).scalars()]

    def _time_param(self, when: datetime) -> object:
        return schema.UtcDateTime().process_bind_param(when, self.engine.dialect)

    def fingerprint(self, conn: Connection | None = None) -> LedgerFingerprint:
        """A summary of every value FIFO reads, computed in the database (see
        :mod:`recon_assets.ledger.fingerprint`): equal fingerprints mean FIFO would read the
        same ledger, so a version computed from it can be reused."""
        columns = self.table_columns("trade_records")
        with self.using(conn) as conn:
            return ledger_fingerprint(conn, columns)

    @contextlib.contextmanager
    def fingerprint_alongside(self, conn: Connection | None = None
                              ) -> Iterator[Callable[[], LedgerFingerprint]]:
        """:meth:`fingerprint`, computed while the body runs; the body calls what this yields
        for it (waiting for it, if it is not done yet).

        On PostgreSQL the fingerprint is one scan on the server, about a second for a million
        orders, during which the client only waits: here it runs on a connection of its own
        from a thread, while the body reads or writes. With ``conn`` (a :meth:`snapshot` that
        has read nothing yet) it is of that snapshot, exported to the other connection, so it
        is exactly the fingerprint of what the body reads through ``conn``; without, it is of
        the ledger as it is when the body starts. Elsewhere it is computed when asked, on
        ``conn``.
        """
        if self.dialect != "postgresql":
            yield lambda: self.fingerprint(conn)
            return
        snapshot = None
        if conn is not None:
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar())
            if not _SNAPSHOT_ID.fullmatch(snapshot):
                raise LedgerError(f"ledger {self.display_url}: unexpected snapshot id "
                                  f"{snapshot!r}")

        def compute() -> LedgerFingerprint:
            with self.connect() as own:
                if snapshot is not None:
                    own = own.execution_options(isolation_level="REPEATABLE READ")
                    # a literal: SET TRANSACTION takes no parameter (the id is checked above)
                    own.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                return self.fingerprint(own)

        # The pool's exit waits for the scan, so the exported snapshot is imported before the
        # body's transaction can end, even when the body raises.
        with ThreadPoolExecutor(1, thread_name_prefix="ledger-fingerprint") as pool:
            future = pool.submit(compute)
            yield future.result


#: What ``pg_export_snapshot()`` returns (hexadecimal words joined by dashes).
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")
#: Up to this many symbols, a read first keeps the rows whose symbol contains one of them.
_PREFILTERED_SYMBOLS = 8


def _symbol_filter(dialect: str, marks: Sequence[str]) -> str:
    """The WHERE condition of a read of some symbols: a row's symbol, trimmed as reads
    normalize it, is one of ``marks``. On PostgreSQL a read of a few symbols (a fan-out step
    reads one) first keeps the rows whose symbol contains one of them, which every row whose
    trimmed symbol is one of them does: ``strpos`` costs half of ``TRIM`` on every row of
    the ledger, which is most of what a read of one symbol among twenty scans."""
    trimmed = f"TRIM(symbol) IN ({', '.join(marks)})"
    if dialect != "postgresql" or len(marks) > _PREFILTERED_SYMBOLS:
        return trimmed
    contains = " OR ".join(f"strpos(symbol, {m}) > 0" for m in marks)
    return f"({contains}) AND {trimmed}"


def _unique_order_ids(conn: Connection) -> bool:
    """Whether ``trade_records`` is a table that itself keeps ``order_id`` unique: its primary
    key, a unique constraint or a unique index (not a partial one) on that column alone. A
    view guarantees nothing."""
    insp = inspect(conn)
    if "trade_records" not in insp.get_table_names():
        return False
    alone = ["order_id"]
    if insp.get_pk_constraint("trade_records").get("constrained_columns") == alone:
        return True
    if any(u["column_names"] == alone for u in insp.get_unique_constraints("trade_records")):
        return True
    return any(i["unique"] and i["column_names"] == alone
               and not any(k.endswith("_where") and v is not None
                           for k, v in i.get("dialect_options", {}).items())
               for i in insp.get_indexes("trade_records"))


def _type_name(kind: object) -> str:
    """A column type's name, saying ``WITH TIME ZONE`` where it applies (``str`` does not)."""
    name = str(kind)
    return f"{name} WITH TIME ZONE" if getattr(kind, "timezone", False) else name


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API hook signature
    """WAL and a busy timeout so the daemon, the UI and the CLI can share one SQLite ledger;
    and the fingerprint aggregate, which SQLite lacks."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    register_sqlite_functions(dbapi_conn)


def _short(exc: Exception) -> str:
    """The driver's message without SQLAlchemy's multi-line statement echo (no parameters)."""
    orig = getattr(exc, "orig", None)
    message = str(orig) if orig is not None else str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__
