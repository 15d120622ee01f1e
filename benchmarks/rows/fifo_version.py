"""Row ``fifo_version``: ``compute_version`` end to end on a 1,000,000-order PostgreSQL ledger.

The ledger (recon-assets' own ``trade_records``, NUMERIC money) holds the same history as
``fifo_allocate`` (``--quick``: 10,000 orders), loaded with COPY in setup. Measured:
``compute_version`` (fingerprint, read the ledger, allocate, write the version with COPY, in
one locked transaction), with its write timed on its own. Baseline: the same
``compute_version`` again with the write done as before COPY (:func:`executemany_write`, the
previous ``write_version``: dicts inserted 10,000 at a time), on all rows, not a sample. The
two versions are then compared in SQL, every column as text (so scale too), both ways.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

import psycopg
from sqlalchemy import insert, text

from benchmarks import fifo
from benchmarks.checks import PEAK_MIB, check
from benchmarks.measure import measure
from benchmarks.rows import result
from benchmarks.scratch import load_trades, scratch_store
from recon_assets.fifo.service import compute_version
from recon_assets.ledger import versions
from recon_assets.ledger.bulk import clean_row
from recon_assets.ledger.schema import fifo_allocations, fifo_computation_log

SYMBOLS = 20
SEED = 0
#: Columns that differ between two versions of the same allocation by design.
PER_VERSION = {"id", "allocation_version", "allocation_batch_id", "allocation_time"}


def executemany_write(conn, *, version, batch_id, allocations, allocation_time, log) -> int:
    """The baseline: ``write_version`` as it was before COPY (commit 1572ffd), over each of
    the frames ``write_version`` is now given."""
    columns = [c.name for c in fifo_allocations.columns if c.name != "id"]
    written = 0
    for frame in allocations:
        records = frame.assign(allocation_time=allocation_time, allocation_version=version,
                               allocation_batch_id=batch_id)
        rows = [clean_row(r) for r in records[columns].to_dict("records")]
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(fifo_allocations), rows[start:start + 10_000])
        written += len(rows)
    conn.execute(insert(fifo_computation_log).values(
        allocation_version=version, allocation_batch_id=batch_id, **log))
    return written


@contextlib.contextmanager
def watched_write(write) -> Iterator[dict[str, Any]]:
    """Make ``compute_version`` write with ``write``, timing it and counting COPY commands."""
    seen = {"write_seconds": 0.0, "copy_commands": 0, "writes": 0}
    original_write, original_copy = versions.write_version, psycopg.Cursor.copy

    def timed(*args, **kwargs):
        seen["writes"] += 1
        started = time.perf_counter()
        try:
            return write(*args, **kwargs)
        finally:
            seen["write_seconds"] += time.perf_counter() - started

    def counted(self, statement, *args, **kwargs):
        if "FROM STDIN" in str(statement):  # a write (the ledger is read by COPY TO too)
            seen["copy_commands"] += 1
        return original_copy(self, statement, *args, **kwargs)

    versions.write_version, psycopg.Cursor.copy = timed, counted
    try:
        yield seen
    finally:
        versions.write_version, psycopg.Cursor.copy = original_write, original_copy


def _differences(store, a: int, b: int) -> int:
    """Rows of version ``a`` not in ``b`` plus rows of ``b`` not in ``a`` (as text, with
    duplicates), ignoring the per-version columns."""
    cols = ", ".join(f'"{c.name}"::text' for c in fifo_allocations.columns
                     if c.name not in PER_VERSION)
    one = f"SELECT {cols} FROM fifo_allocations WHERE allocation_version = "
    with store.connect() as conn:
        return sum(conn.execute(text(f"SELECT count(*) FROM ({one}{x} EXCEPT ALL {one}{y}) d"))
                   .scalar() for x, y in ((a, b), (b, a)))


def run(quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 1_000_000
    with scratch_store() as store:
        load_trades(store, fifo.make_trades(n, SYMBOLS, SEED))
        with watched_write(versions.write_version) as ours, measure() as project:
            mine = compute_version(store, carry=False)
        with watched_write(executemany_write) as theirs, measure() as base:
            old = compute_version(store, carry=False)  # a full version, not a copy
        differences = _differences(store, mine.version, old.version)
    if ours["writes"] != 1 or theirs["writes"] != 1:
        raise RuntimeError("compute_version no longer writes through versions.write_version, "
                           "so the executemany baseline cannot be swapped in")
    return result(
        "fifo_version", f"compute_version on PostgreSQL, {n:,} orders",
        size={"orders": n, "allocations": mine.allocation_count, "symbols": SYMBOLS},
        project=project,
        baseline="the same compute_version, written with executemany (all rows)",
        baseline_phase=base,
        checks=[check("peak", round(project.peak_rss_mib), "<", PEAK_MIB, " MiB"),
                check("write uses COPY", ours["copy_commands"], ">=", 1),
                check("same rows as executemany", differences, "==", 0)],
        details={"write_seconds": round(ours["write_seconds"], 3),
                 "baseline_write_seconds": round(theirs["write_seconds"], 3),
                 "write_ratio": round(theirs["write_seconds"] / ours["write_seconds"], 2),
                 "rest_seconds": round(project.seconds - ours["write_seconds"], 3),
                 "copy_commands": ours["copy_commands"],
                 "baseline_copy_commands": theirs["copy_commands"],
                 "allocations": mine.allocation_count, "unmatched": mine.unmatched_count,
                 "differences": differences})
