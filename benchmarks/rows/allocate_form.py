"""Rows ``fifo_allocate_<form>``: ``allocate`` vs the Decimal deque FIFO, money in one form.

The baseline issue 17 names (:mod:`benchmarks.deque_fifo`: default-context ``Decimal``, a
deque of open buys per symbol, rounded at the end) on the same 1,000,000 orders over 20
symbols (``--quick``: 10,000), money as ``Decimal`` objects, decimal strings, float64 or Arrow
``decimal128`` columns (:mod:`benchmarks.forms`). First a phase that only allocates once, for
the project's peak memory; then best-of-3 ``allocate`` against one deque run, compared row by
row.
"""

from __future__ import annotations

from typing import Any

from benchmarks import fifo, forms
from benchmarks.checks import check
from benchmarks.measure import measure
from benchmarks.rows import result
from recon_assets.fifo import allocate

SYMBOLS = 20
SEED = 0
#: Issue 17's targets (and its peak: under 1 GiB): 4x for Decimal objects (the deque loop reads them for free), else 10x.
TARGETS = {"decimal": 4, "string": 10, "float64": 10, "arrow": 10}


def run_form(form: str, quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 1_000_000
    trades = forms.as_form(fifo.make_trades(n, SYMBOLS, SEED), form)
    with measure() as project:
        allocate(trades)
    del trades
    with measure() as both:
        report = fifo.run_deque(n, SYMBOLS, SEED, form, repeats=3)
    return result(
        f"fifo_allocate_{form}", f"FIFO allocate, {n:,} orders / {SYMBOLS} symbols, {form}",
        size={"orders": n, "symbols": SYMBOLS}, project=project,
        baseline=f"Decimal deque FIFO (benchmarks/deque_fifo.py), {form} money",
        baseline_phase=both, seconds=report["allocate_seconds"],
        baseline_seconds=report["deque_seconds"],
        checks=[check("speedup", report["speedup"], ">=", TARGETS[form], "x"),
                check("identical", report.get("identical"), "==", True),
                check("peak", round(project.peak_rss_mib), "<", 1024, " MiB")],
        details={**report, "first_allocate_seconds": round(project.seconds, 3),
                 "note": "baseline phase peak covers allocate, the deque FIFO and the "
                         "comparison together"})
