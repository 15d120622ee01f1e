"""Tax export: pure formatting, the chunked reader and the streaming writers, on real ledgers."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recon_assets.fifo import allocate
from recon_assets.fifo.export import (TAX_COLUMNS, ExportError, export_chunks, holding_term,
                                      iter_allocation_chunks, tax_rows, unmatched_rows,
                                      write_export)
from recon_assets.ledger import versions
from recon_assets_tests.fifo_history.scenarios import BASE, demo_backfill, order


@pytest.mark.parametrize("acquired, sold, term", [
    (date(2024, 3, 1), date(2025, 3, 1), "short"),  # exactly one year
    (date(2024, 3, 1), date(2025, 3, 2), "long"),
    (date(2024, 2, 29), date(2025, 2, 28), "short"),
    (date(2024, 2, 29), date(2025, 3, 1), "long"),
    (date(2024, 3, 1), date(2024, 3, 1), "short"),
])
def test_holding_term(acquired, sold, term):
    assert holding_term(acquired, sold) == term


def test_tax_rows_and_unmatched_rows():
    frame = allocate(pd.DataFrame(BASE + [order("s9", "BTC-USD", "sell", 400, "150", "0.5")]))
    gains, unmatched = tax_rows(frame), unmatched_rows(frame)
    assert list(gains.columns) == TAX_COLUMNS
    first = gains.iloc[0]
    assert first["Description"] == "1 BTC" and first["Date Acquired"] == date(2024, 1, 2)
    assert first["Proceeds"] == Decimal("109") and first["Cost Basis"] == Decimal("101")
    assert first["Gain or Loss"] == Decimal("8") and first["Term"] == "short"
    assert (first["Buy Order ID"], first["Sell Order ID"]) == ("b1", "s1")
    assert gains.loc[gains["Sell Order ID"] == "s9", "Term"].tolist() == ["long"]
    assert sorted(unmatched["Sell Order ID"]) == ["s2"]
    assert unmatched.iloc[0]["Unmatched Size"] == Decimal("0.5")
    assert unmatched.iloc[0]["Notes"].startswith("UNMATCHED")


class RecordingSink:
    """A sink that keeps what it was given, to see how the writer was fed."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.closed = False

    def write(self, frame: pd.DataFrame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


def _version_rows(url: str, version: int) -> pd.DataFrame:
    from recon_assets.ledger.store import LedgerStore

    with LedgerStore(url).connect() as conn:
        return versions.read_allocations(conn, version)


def _pnl(rows: pd.DataFrame) -> Decimal:
    return sum((v for v in rows["pnl_usd"] if v is not None), Decimal(0))


def test_reader_streams_in_chunks_and_writer_is_fed_per_chunk(ledger_url):
    history = demo_backfill(ledger_url)
    rows = _version_rows(ledger_url, 2)
    with history.store().connect() as conn:
        chunks = list(iter_allocation_chunks(conn, 2, chunk_rows=50))
        assert [len(c) for c in chunks[:-1]] == [50] * (len(chunks) - 1)
        assert 0 < len(chunks[-1]) <= 50 and sum(map(len, chunks)) == len(rows)
        assert pd.concat(chunks)["id"].tolist() == rows["id"].tolist()
        gains, unmatched = RecordingSink(), RecordingSink()
        totals = export_chunks(iter_allocation_chunks(conn, 2, chunk_rows=50), gains, unmatched)
    assert len(gains.frames) == len(chunks) and max(len(f) for f in gains.frames) <= 50
    assert totals.gain == _pnl(rows) == history.after.total_pnl_usd


def test_export_files_add_up_to_the_version(ledger_url, tmp_path):
    history = demo_backfill(ledger_url)
    rows = _version_rows(ledger_url, 1)  # version 1 has unmatched sells
    unmatched_count = int(rows["buy_order_id"].isna().sum())
    assert unmatched_count > 0
    csv_path, pq_path = tmp_path / "gains.csv", tmp_path / "gains.parquet"
    with history.store().connect() as conn:
        t_csv = write_export(iter_allocation_chunks(conn, 1, chunk_rows=64), str(csv_path),
                             "csv", str(tmp_path / "gains.unmatched.csv"))
        t_pq = write_export(iter_allocation_chunks(conn, 1, chunk_rows=64), str(pq_path),
                            "parquet", str(tmp_path / "gains.pq.unmatched.csv"))
    assert t_csv.gain == t_pq.gain == _pnl(rows) == history.before.total_pnl_usd
    with open(csv_path, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == len(rows) - unmatched_count
    assert sum(Decimal(r["Gain or Loss"]) for r in written) == t_csv.gain
    parquet = pq.ParquetFile(pq_path)
    assert parquet.schema_arrow.names == TAX_COLUMNS
    assert parquet.num_row_groups == -(-len(rows) // 64)  # one row group per chunk
    assert sum(parquet.read().column("Gain or Loss").to_pylist()) == t_pq.gain
    with open(tmp_path / "gains.unmatched.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == unmatched_count
    per_key = t_csv.by_key
    assert sum(t.unmatched for t in per_key.values()) == unmatched_count
    by_symbol: dict[str, Decimal] = {}
    for (_year, symbol), t in per_key.items():
        by_symbol[symbol] = by_symbol.get(symbol, Decimal(0)) + t.gain
    assert by_symbol == {s: p for s, p in history.before.pnl_by_symbol.items()}
    assert "total gain or loss: " + format(t_csv.gain, "f") in t_csv.lines()[-1]


def test_year_and_symbol_filters(ledger_url):
    history = demo_backfill(ledger_url)
    rows = _version_rows(ledger_url, 2)
    year = rows["sell_time"].iloc[0].year
    expected = rows[(rows["symbol"] == "ETH-USD") & (rows["sell_time"].dt.year == year)]
    with history.store().connect() as conn:
        got = pd.concat(iter_allocation_chunks(conn, 2, symbols=["ETH-USD"], year=year))
        none = list(iter_allocation_chunks(conn, 2, year=year - 5))
    assert got["id"].tolist() == expected["id"].tolist() and none == []


def test_failed_export_leaves_no_files(tmp_path):
    frame = allocate(pd.DataFrame(BASE)).astype(object)
    frame.loc[0, "allocated_size"] = Decimal("1e-30")  # too many places for the file's type

    path = tmp_path / "gains.parquet"
    with pytest.raises(ExportError, match="gains.parquet"):
        write_export([frame], str(path), "parquet", str(tmp_path / "gains.unmatched.csv"))
    assert list(tmp_path.iterdir()) == []
