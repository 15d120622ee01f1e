"""A FIFO version as a capital-gains file for tax tools (Form 8949-like), streamed.

A version can hold millions of rows, so it is read in chunks (a server-side cursor on
PostgreSQL) and each chunk is formatted and written before the next is read: memory stays
constant in the number of rows. Matched pieces go to the gains file; unmatched sells have no
cost basis, so they go to a separate review file and are never silently dropped. Formatting
(:func:`tax_rows`, :func:`unmatched_rows`, :func:`holding_term`) is pure; the sinks and
:func:`iter_allocation_chunks` are the only I/O.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, localcontext
from typing import Any, Iterable, Iterator, Protocol, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, select

from recon_assets.errors import EXIT_FAILURE, ConfigError, ReconError
from recon_assets.ledger.schema import fifo_allocations
from recon_assets.money import EXACT, decimal_str, to_decimal

_ZERO = Decimal(0)
_MONEY = pa.decimal128(38, 8)
TAX_SCHEMA = pa.schema([
    ("Description", pa.string()), ("Date Acquired", pa.date32()), ("Date Sold", pa.date32()),
    ("Proceeds", _MONEY), ("Cost Basis", _MONEY), ("Gain or Loss", _MONEY), ("Term", pa.string()),
    ("Symbol", pa.string()), ("Size", pa.decimal128(38, 18)), ("Buy Order ID", pa.string()),
    ("Sell Order ID", pa.string())])
TAX_COLUMNS = TAX_SCHEMA.names
UNMATCHED_COLUMNS = ["Sell Order ID", "Symbol", "Date Sold", "Sold At", "Unmatched Size",
                     "Sell Price", "Proceeds", "Notes"]


class ExportError(ReconError):
    """The export could not be written (a value that does not fit the file's types, I/O)."""

    exit_code = EXIT_FAILURE


def holding_term(acquired: date, sold: date) -> str:
    """``long`` when held more than one year (sold after the acquisition's anniversary date),
    else ``short``; an acquisition on 29 February has its anniversary on 28 February."""
    try:
        anniversary = acquired.replace(year=acquired.year + 1)
    except ValueError:
        anniversary = acquired.replace(year=acquired.year + 1, day=28)
    return "long" if sold > anniversary else "short"


def _dates(times: pd.Series) -> list[date]:
    return [t.date() for t in pd.to_datetime(times, utc=True)]


def _decimals(values: pd.Series) -> list[Decimal | None]:
    return [to_decimal(v) for v in values.tolist()]


def _matched(chunk: pd.DataFrame) -> pd.Series:
    return chunk["buy_order_id"].map(lambda v: v is not None and v is not pd.NA and v == v)


def tax_rows(chunk: pd.DataFrame) -> pd.DataFrame:
    """The matched rows of ``fifo_allocations`` as :data:`TAX_COLUMNS` (UTC dates, exact
    decimals): proceeds are ``net_proceeds_usd`` (after the sell's fee), gain is ``pnl_usd``."""
    rows = chunk[_matched(chunk)]
    sizes = _decimals(rows["allocated_size"])
    acquired, sold = _dates(rows["buy_time"]), _dates(rows["sell_time"])
    return pd.DataFrame({
        "Description": [f"{format(s.normalize(), 'f')} {sym.split('-')[0]}"
                        for s, sym in zip(sizes, rows["symbol"])],
        "Date Acquired": acquired, "Date Sold": sold,
        "Proceeds": _decimals(rows["net_proceeds_usd"]),
        "Cost Basis": _decimals(rows["cost_basis_usd"]),
        "Gain or Loss": _decimals(rows["pnl_usd"]),
        "Term": [holding_term(a, s) for a, s in zip(acquired, sold)],
        "Symbol": rows["symbol"].tolist(), "Size": sizes,
        "Buy Order ID": rows["buy_order_id"].tolist(),
        "Sell Order ID": rows["sell_order_id"].tolist()}, columns=TAX_COLUMNS)


def unmatched_rows(chunk: pd.DataFrame) -> pd.DataFrame:
    """The unmatched rows: what no buy covers, for review (no cost basis, so no gain)."""
    rows = chunk[~_matched(chunk)]
    sold_at = pd.to_datetime(rows["sell_time"], utc=True)
    return pd.DataFrame({
        "Sell Order ID": rows["sell_order_id"].tolist(), "Symbol": rows["symbol"].tolist(),
        "Date Sold": _dates(rows["sell_time"]), "Sold At": [t.isoformat() for t in sold_at],
        "Unmatched Size": _decimals(rows["allocated_size"]),
        "Sell Price": _decimals(rows["sell_price"]),
        "Proceeds": _decimals(rows["net_proceeds_usd"]),
        "Notes": rows["notes"].tolist()}, columns=UNMATCHED_COLUMNS)


@dataclass
class Totals:
    """Sums of one (year sold, symbol): exact, so they add up to the version's PnL."""

    lots: int = 0
    proceeds: Decimal = _ZERO
    cost_basis: Decimal = _ZERO
    short_gain: Decimal = _ZERO
    long_gain: Decimal = _ZERO
    unmatched: int = 0

    @property
    def gain(self) -> Decimal:
        return EXACT.add(self.short_gain, self.long_gain)


@dataclass
class ExportTotals:
    """Running totals per (year sold, symbol), fed one formatted chunk at a time."""

    by_key: dict[tuple[int, str], Totals] = field(default_factory=dict)

    def add(self, gains: pd.DataFrame, unmatched: pd.DataFrame) -> None:
        for sold, symbol, proceeds, cost, gain, term in zip(
                gains["Date Sold"], gains["Symbol"], gains["Proceeds"], gains["Cost Basis"],
                gains["Gain or Loss"], gains["Term"]):
            t = self.by_key.setdefault((sold.year, symbol), Totals())
            t.lots += 1
            t.proceeds = EXACT.add(t.proceeds, proceeds)
            t.cost_basis = EXACT.add(t.cost_basis, cost)
            if term == "long":
                t.long_gain = EXACT.add(t.long_gain, gain)
            else:
                t.short_gain = EXACT.add(t.short_gain, gain)
        for sold, symbol in zip(unmatched["Date Sold"], unmatched["Symbol"]):
            self.by_key.setdefault((sold.year, symbol), Totals()).unmatched += 1

    @property
    def gain(self) -> Decimal:
        with localcontext(EXACT):
            return sum((t.gain for t in self.by_key.values()), _ZERO)

    def lines(self) -> list[str]:
        """A plain-text table: one line per year and symbol, then the total."""
        out = [f"{'year':<6}{'symbol':<12}{'lots':>7}{'proceeds':>20}{'cost basis':>20}"
               f"{'short-term':>18}{'long-term':>18}{'gain':>18}{'unmatched':>10}"]
        for (year, symbol), t in sorted(self.by_key.items()):
            out.append(f"{year:<6}{symbol:<12}{t.lots:>7}{decimal_str(t.proceeds):>20}"
                       f"{decimal_str(t.cost_basis):>20}{decimal_str(t.short_gain):>18}"
                       f"{decimal_str(t.long_gain):>18}{decimal_str(t.gain):>18}"
                       f"{t.unmatched:>10}")
        out.append(f"total gain or loss: {decimal_str(self.gain)} USD over "
                   f"{sum(t.lots for t in self.by_key.values())} lots; "
                   f"{sum(t.unmatched for t in self.by_key.values())} unmatched sells "
                   "(not in the gains file: no cost basis)")
        return out


class Sink(Protocol):
    """Where formatted chunks go; a sink holds at most one chunk at a time."""

    def write(self, frame: pd.DataFrame) -> None: ...

    def close(self) -> None: ...


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, Decimal):
        return decimal_str(value)
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


class _PartialFile:
    """A file written under ``<path>.partial`` and renamed when complete, removed on abort,
    so a failed export never leaves a file that looks finished."""

    def __init__(self, path: str):
        self.path, self._partial = path, f"{path}.partial"
        self._finished = False

    def _finish(self) -> None: ...

    def finish(self) -> None:
        """Flush and close the partial file (once), without publishing it yet."""
        if not self._finished:
            self._finished = True
            self._finish()

    def publish(self) -> None:
        os.replace(self._partial, self.path)

    def close(self) -> None:
        self.finish()
        self.publish()

    def abort(self) -> None:
        self.finish()
        if os.path.exists(self._partial):
            os.remove(self._partial)


class CsvSink(_PartialFile):
    """A CSV file written chunk by chunk: decimals as plain text, dates ISO."""

    def __init__(self, path: str, columns: Sequence[str]):
        super().__init__(path)
        self._file = open(self._partial, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(columns)

    def write(self, frame: pd.DataFrame) -> None:
        self._csv.writerows([_cell(v) for v in row] for row in frame.itertuples(index=False))

    def _finish(self) -> None:
        self._file.close()


class ParquetSink(_PartialFile):
    """A Parquet file, one row group per chunk, exact decimals."""

    def __init__(self, path: str, schema: pa.Schema = TAX_SCHEMA):
        super().__init__(path)
        self._schema = schema
        self._writer = pq.ParquetWriter(self._partial, schema)

    def write(self, frame: pd.DataFrame) -> None:
        try:
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ExportError(f"cannot write {self.path}: {exc}") from None
        self._writer.write_table(table)

    def _finish(self) -> None:
        self._writer.close()


def export_chunks(chunks: Iterable[pd.DataFrame], gains: Sink, unmatched: Sink) -> ExportTotals:
    """Format and write each chunk as it comes (nothing accumulates but the totals)."""
    totals = ExportTotals()
    for chunk in chunks:
        g, u = tax_rows(chunk), unmatched_rows(chunk)
        if len(g):
            gains.write(g)
        if len(u):
            unmatched.write(u)
        totals.add(g, u)
    return totals


def write_export(chunks: Iterable[pd.DataFrame], path: str, fmt: str,
                 unmatched_path: str) -> ExportTotals:
    """Both files, complete or not at all: on any failure the partial files are removed, and
    the first file is published only once the second is complete too.

    A path that cannot be written (a directory, a missing folder, no permission, a read-only
    file system) is the user's to fix: ConfigError (exit 2) naming it, no file left behind.
    """
    for target in (path, unmatched_path):
        if os.path.isdir(target):
            raise ConfigError(f"cannot write {target}: it is a directory")
    sinks: list[_PartialFile] = []
    published: list[str] = []
    try:
        sinks.append(ParquetSink(path) if fmt == "parquet" else CsvSink(path, TAX_COLUMNS))
        sinks.append(CsvSink(unmatched_path, UNMATCHED_COLUMNS))
        totals = export_chunks(chunks, sinks[0], sinks[1])
        for sink in sinks:
            sink.finish()
        for sink in sinks:
            sink.publish()
            published.append(sink.path)
    except BaseException as exc:
        for sink in sinks:
            sink.abort()
        for done in published:
            os.remove(done)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot write {_target(exc, path)}: "
                              f"{exc.strerror or exc}") from None
        raise
    return totals


def _target(exc: OSError, default: str) -> str:
    """The export file an OSError is about (not its ``.partial`` stand-in)."""
    name = getattr(exc, "filename2", None) or exc.filename or default
    return str(name).removesuffix(".partial")


def iter_allocation_chunks(conn: Connection, version: int, *,
                           symbols: Sequence[str] | None = None, year: int | None = None,
                           chunk_rows: int = 10_000) -> Iterator[pd.DataFrame]:
    """A version's rows (``fifo_allocations`` columns), ``chunk_rows`` at a time, in order.

    ``yield_per`` streams from a server-side cursor where the driver has one (PostgreSQL),
    so neither the database driver nor this process holds the whole version.
    """
    table = fifo_allocations
    query = select(table).where(table.c.allocation_version == version).order_by(table.c.id)
    if symbols:
        query = query.where(table.c.symbol.in_(list(symbols)))
    if year is not None:
        query = query.where(table.c.sell_time >= datetime(year, 1, 1, tzinfo=timezone.utc),
                            table.c.sell_time < datetime(year + 1, 1, 1, tzinfo=timezone.utc))
    columns = [c.name for c in table.columns]
    result = conn.execution_options(yield_per=chunk_rows).execute(query)
    for part in result.mappings().partitions():
        yield pd.DataFrame([dict(r) for r in part], columns=columns)
