"""Row ``compare_orders``: ``recon_assets.diff.compare_orders`` vs datacompy's ``PandasCompare``.

1,000,000 exchange orders vs a ledger of about 1,000,000 (``--quick``: 10,000). First a phase
that only builds the frames and compares once, for the project's peak memory; then
:func:`benchmarks.diff.run` times both tools best-of-3, alternating, on the same frames, and
reports what each found.
"""

from __future__ import annotations

from typing import Any

from benchmarks import diff
from benchmarks.checks import PEAK_MIB, check
from benchmarks.measure import measure
from benchmarks.rows import result
from recon_assets.diff import compare_orders

SEED = 0


def run(quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 1_000_000
    exchange, ledger = diff.make_frames(n, SEED)
    with measure() as project:
        compare_orders(exchange, ledger)
    del exchange, ledger
    with measure() as both:
        report = diff.run(n, SEED, repeats=3)
    agree = report["compare_orders_found"] == report["datacompy_found"]
    return result(
        "compare_orders", f"compare_orders, {n:,} vs {n:,} orders",
        size={"orders": n}, project=project,
        baseline="datacompy PandasCompare (same frames, same tolerances)",
        baseline_phase=both, seconds=report["compare_orders_seconds"],
        baseline_seconds=report["datacompy_seconds"],
        checks=[check("speedup", report["speedup"], ">=", 10, "x"),
                check("same findings as datacompy", agree, "==", True),
                check("peak", round(project.peak_rss_mib), "<", PEAK_MIB, " MiB")],
        details={**report, "first_compare_seconds": round(project.seconds, 3),
                 "note": "baseline phase peak covers both tools together"})
