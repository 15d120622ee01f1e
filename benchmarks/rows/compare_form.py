"""Rows ``compare_orders_<form>``: ``compare_orders`` vs datacompy, money in one form.

The frames of row ``compare_orders`` (1,000,000 vs about 1,000,000 orders; ``--quick``:
10,000) with their money as float64 (what ``read_sql`` gives for double-precision columns) or
decimal strings (:mod:`benchmarks.forms`); row ``compare_orders`` is the ``Decimal`` form.
"""

from __future__ import annotations

from typing import Any

from benchmarks import diff, forms
from benchmarks.checks import check
from benchmarks.measure import measure
from benchmarks.rows import result
from recon_assets.diff import compare_orders

SEED = 0


def run_form(form: str, quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 1_000_000
    exchange, ledger = (forms.as_form(f, form) for f in diff.make_frames(n, SEED))
    with measure() as project:
        compare_orders(exchange, ledger)
    del exchange, ledger
    with measure() as both:
        report = diff.run(n, SEED, repeats=3, form=form)
    agree = report["compare_orders_found"] == report["datacompy_found"]
    return result(
        f"compare_orders_{form}", f"compare_orders, {n:,} vs {n:,} orders, {form}",
        size={"orders": n}, project=project,
        baseline=f"datacompy PandasCompare (same frames, same tolerances), {form} money",
        baseline_phase=both, seconds=report["compare_orders_seconds"],
        baseline_seconds=report["datacompy_seconds"],
        checks=[check("speedup", report["speedup"], ">=", 10, "x"),
                check("same findings as datacompy", agree, "==", True),
                check("peak", round(project.peak_rss_mib), "<", 1024, " MiB")],
        details={**report, "first_compare_seconds": round(project.seconds, 3),
                 "note": "baseline phase peak covers both tools together"})
