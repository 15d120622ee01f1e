"""Targets as data: each row reports checks (value, comparison, threshold) and whether each holds.

The thresholds are the ones of issue 8; a row meets its target only when every check holds.
"""

from __future__ import annotations

import operator
from typing import Any

_OPS = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le,
        "==": operator.eq}
#: Peak memory target of the 1,000,000-row runs.
PEAK_MIB = 1536


def check(name: str, value: Any, op: str, threshold: Any, unit: str = "") -> dict[str, Any]:
    """One target: ``value op threshold``; ``met`` is False when the value is missing."""
    met = value is not None and bool(_OPS[op](value, threshold))
    return {"name": name, "value": value, "op": op, "threshold": threshold, "unit": unit,
            "met": met}


def describe(item: dict[str, Any]) -> str:
    """``speedup 41.1x >= 20x`` / ``identical True == True``, for the table."""
    unit = item["unit"]
    value = item["value"]
    shown = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"{item['name']} {shown}{unit} {item['op']} {item['threshold']}{unit}"
