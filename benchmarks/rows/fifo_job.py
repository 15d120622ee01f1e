"""Row ``fifo_job``: what a user runs, ``recon-assets fifo``, against the database's own I/O floor.

The ledger is BotTrader's ``trade_records`` (double precision money, timestamptz, its NOT NULL
extras) in a scratch PostgreSQL schema, holding ``fifo_allocate``'s history (1,000,000 orders
over 20 symbols; ``--quick``: 10,000), loaded with COPY in setup. Measured, each as a whole
process (``recon-assets fifo`` in a subprocess with its own ``DAGSTER_HOME``, so start-up
counts): the full job (plan, read, allocate, write, the checks, ``daily_pnl_report``,
``fifo_version_diff``, ``unmatched_sells``), then, after one order's size is changed in one of
the 20 symbols, the job again (the incremental version).

Baseline, the I/O floor, measured in the same run: PostgreSQL ``COPY`` of the ledger's FIFO
columns out to the client, plus ``COPY`` of the version's rows (as CSV, prepared before the
clock starts) into an empty table with ``fifo_allocations``' indexes and constraints. Checks:
the job at most 2.5x that floor, the incremental job at most 15% of the full one, the peak
memory of each job process under 1 GiB.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks import fifo
from benchmarks.checks import check
from benchmarks.measure import Phase
from benchmarks.rows import result
from benchmarks.scratch import scratch_store
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import BOTTRADER_DDL

SYMBOLS = 20
SEED = 0
#: Peak memory target of this row's job processes.
PEAK_MIB = 1024
FIFO_COLUMNS = "order_id, symbol, side, order_time, price, size, total_fees_usd"


def load_bottrader(store: LedgerStore, n: int) -> None:
    """Replace ``trade_records`` with BotTrader's table holding ``n`` orders as floats."""
    trades = fifo.make_trades(n, SYMBOLS, SEED)
    frame = trades.assign(**{c: trades[c].astype(float) for c in
                             ("price", "size", "total_fees_usd")})
    frame["order_time"] = frame["order_time"].dt.strftime("%Y-%m-%d %H:%M:%S+00")
    frame = frame.assign(trigger="{}", status="filled", source="bot")
    with store.begin() as conn:
        conn.execute(text("DROP TABLE trade_records"))
        conn.execute(text(BOTTRADER_DDL))
    raw = store.engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy(
                f"COPY trade_records ({FIFO_COLUMNS}, trigger, status, source) "
                "FROM STDIN (FORMAT csv)") as copy:
            copy.write(frame[[*FIFO_COLUMNS.split(", "), "trigger", "status", "source"]]
                       .to_csv(index=False, header=False))  # floats as their shortest repr
        with raw.cursor() as cursor:
            cursor.execute("ANALYZE trade_records")
        raw.commit()
    finally:
        raw.close()


def io_floor(store: LedgerStore, version: int) -> dict[str, float]:
    """Seconds of COPY out of the ledger's FIFO columns and COPY in of the version's rows."""
    raw = store.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            rows = io.BytesIO()
            with cursor.copy("COPY (SELECT * FROM fifo_allocations WHERE allocation_version = "
                             f"{int(version)}) TO STDOUT") as copy:
                for data in copy:
                    rows.write(data)
            cursor.execute("CREATE TEMPORARY TABLE floor_allocations "
                           "(LIKE fifo_allocations INCLUDING ALL)")
            started = time.perf_counter()
            with cursor.copy(f"COPY (SELECT {FIFO_COLUMNS} FROM trade_records) "
                             "TO STDOUT") as copy:
                for _ in copy:
                    pass
            read = time.perf_counter() - started
            started = time.perf_counter()
            with cursor.copy("COPY floor_allocations FROM STDIN") as copy:
                copy.write(rows.getbuffer())
            raw.commit()
            write = time.perf_counter() - started
    finally:
        raw.close()
    return {"read": read, "write": write}


def run_fifo(url: str, home: Path) -> tuple[float, str]:
    """``recon-assets fifo`` as a user runs it: wall seconds and what it printed."""
    env = {**os.environ, "DATABASE_URL": url, "RECON_HOME": str(home),
           "DAGSTER_HOME": str(home / "dagster")}
    started = time.perf_counter()
    command = [str(Path(sys.executable).with_name("recon-assets")), "fifo", "-q"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: a check failed (reported, still measured)
        raise RuntimeError(f"recon-assets fifo exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done.stdout


def run(quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 1_000_000
    with scratch_store() as store, tempfile.TemporaryDirectory() as tmp:
        load_bottrader(store, n)
        url = store.engine.url.render_as_string(hide_password=False)
        full_seconds, full_out = run_fifo(url, Path(tmp))
        floor = io_floor(store, 1)
        with store.begin() as conn:  # one order of one symbol changes
            conn.execute(text(
                "UPDATE trade_records SET size = size * 0.5 WHERE order_id = "
                "(SELECT min(order_id) FROM trade_records WHERE symbol = 'SYM007-USD')"))
        incremental_seconds, incremental_out = run_fifo(url, Path(tmp))
        with store.connect() as conn:
            written = conn.execute(text(
                "SELECT allocation_version, allocation_count FROM fifo_computation_log "
                "ORDER BY allocation_version")).all()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    floor_seconds = floor["read"] + floor["write"]
    job = Phase(full_seconds, peak)
    return result(
        "fifo_job", f"recon-assets fifo on a {n:,}-order double-precision PostgreSQL ledger",
        size={"orders": n, "symbols": SYMBOLS, "allocations": written[0][1]},
        project=job,
        baseline="I/O floor: COPY of the ledger's FIFO columns out + COPY of the version's "
                 "rows into a table with fifo_allocations' indexes",
        baseline_phase=Phase(floor_seconds, 0.0),
        checks=[check("job / floor", round(full_seconds / floor_seconds, 2), "<=", 2.5, "x"),
                check("incremental / full", round(incremental_seconds / full_seconds, 3),
                      "<=", 0.15),
                check("peak", round(peak), "<", PEAK_MIB, " MiB"),
                check("versions written", len(written), "==", 2)],
        details={"floor_read_seconds": round(floor["read"], 3),
                 "floor_write_seconds": round(floor["write"], 3),
                 "incremental_seconds": round(incremental_seconds, 3),
                 "full_summary": full_out.splitlines()[:1],
                 "incremental_summary": incremental_out.splitlines()[:1]})
