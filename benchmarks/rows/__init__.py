"""The benchmark rows of issue 8. Each row is ``run(quick) -> dict`` in its own module, run in
a fresh subprocess by :mod:`benchmarks.cli`; :func:`result` gives every row the same shape."""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

from benchmarks.measure import Phase

#: Row name -> module under ``benchmarks.rows``, in the order the table shows them.
ROWS = {
    "fifo_allocate": "allocate",
    "compare_orders": "compare",
    "sync": "sync",
    "tier1": "tier1",
    "fifo_version": "fifo_version",
    "fifo_job": "fifo_job",
    "fifo_incremental": "fifo_incremental",
    # issue 17: each money form against the baseline a user would write
    **{f"fifo_allocate_{form}": f"allocate_form:{form}"
       for form in ("decimal", "string", "float64", "arrow")},
    **{f"compare_orders_{form}": f"compare_form:{form}" for form in ("float64", "string")},
}


def runner(name: str) -> Callable[[bool], dict[str, Any]]:
    """A row's ``run``; ``module:form`` names a module's ``run_form`` for one money form."""
    module, _, form = ROWS[name].partition(":")
    loaded = importlib.import_module(f"benchmarks.rows.{module}")
    return functools.partial(loaded.run_form, form) if form else loaded.run


def result(name: str, title: str, *, size: dict[str, Any], project: Phase, baseline: str,
           baseline_phase: Phase | None, checks: list[dict[str, Any]],
           details: dict[str, Any], seconds: float | None = None,
           baseline_seconds: float | None = None) -> dict[str, Any]:
    """One row of the table and the JSON file.

    ``seconds``/``baseline_seconds`` default to the phases' wall times (a row passes them when
    it reports a best-of-N time measured inside the phase). ``ratio`` is baseline / project:
    above 1 the project is faster.
    """
    ours = project.seconds if seconds is None else seconds
    theirs = (baseline_phase.seconds if baseline_phase and baseline_seconds is None
              else baseline_seconds)
    return {
        "name": name, "title": title, "size": size,
        "seconds": round(ours, 3),
        "baseline": baseline,
        "baseline_seconds": None if theirs is None else round(theirs, 3),
        "ratio": None if not theirs or not ours else round(theirs / ours, 2),
        "checks": checks,
        "met": all(c["met"] for c in checks),
        "peak_rss_mib": round(project.peak_rss_mib, 1),
        "baseline_peak_rss_mib": (round(baseline_phase.peak_rss_mib, 1)
                                  if baseline_phase else None),
        "peak_is_phase_only": project.peak_is_phase_only,
        "details": details,
    }
