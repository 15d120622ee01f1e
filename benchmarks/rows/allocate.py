"""Row ``fifo_allocate``: ``recon_assets.fifo.allocate`` vs the Decimal-deque reference FIFO.

1,000,000 orders over 20 symbols (``--quick``: 10,000). First a phase that only builds the
trades and allocates once, for the project's peak memory; then :func:`benchmarks.fifo.run`
times best-of-3 ``allocate`` and the reference on the same frame in this process, and checks
the two results are identical row by row.
"""

from __future__ import annotations

from typing import Any

from benchmarks import fifo
from benchmarks.checks import PEAK_MIB, check
from benchmarks.measure import measure
from benchmarks.rows import result
from recon_assets.fifo import allocate

SYMBOLS = 20
SEED = 0


def run(quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 1_000_000
    trades = fifo.make_trades(n, SYMBOLS, SEED)
    with measure() as project:
        allocate(trades)
    del trades
    with measure() as both:
        report = fifo.run(n, SYMBOLS, SEED, reference=True, repeats=3)
    return result(
        "fifo_allocate", f"FIFO allocate, {n:,} orders / {SYMBOLS} symbols",
        size={"orders": n, "symbols": SYMBOLS}, project=project,
        baseline="Decimal deque reference FIFO (recon_assets_tests/fifo/reference.py)",
        baseline_phase=both, seconds=report["allocate_seconds"],
        baseline_seconds=report["reference_seconds"],
        checks=[check("speedup", report["speedup"], ">=", 20, "x"),
                check("allocate", report["allocate_seconds"], "<", 1.0, " s"),
                check("identical", report.get("identical"), "==", True),
                check("peak", round(project.peak_rss_mib), "<", PEAK_MIB, " MiB")],
        details={**report, "first_allocate_seconds": round(project.seconds, 3),
                 "note": "baseline phase peak covers allocate, the reference and the "
                         "comparison together"})
