"""Small builders for Dagster metadata shared by the assets (Markdown tables, time ranges)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Sequence

import dagster as dg
import pandas as pd

from recon_assets.money import decimal_str


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
                   limit: int = 20) -> dg.MetadataValue:
    """A Markdown table of the first ``limit`` rows (the UI renders it under the asset)."""
    if not rows:
        return dg.MetadataValue.md("_none_")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:limit]:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    if len(rows) > limit:
        lines.append(f"\n_{len(rows) - limit} more not shown_")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: Any) -> str:
    if value is None or value is pd.NaT:
        return ""
    return str(value).replace("|", "\\|")


def problems_table(problems: Iterable[tuple[str, str, str]]) -> dg.MetadataValue:
    """``(row id, field, message)`` problems as a Markdown table."""
    rows = [{"order_id": r, "field": f, "problem": m} for r, f, m in problems]
    return markdown_table(rows, ["order_id", "field", "problem"])


def time_range(times: pd.Series, prefix: str = "") -> dict[str, dg.MetadataValue]:
    """First and last timestamp of a column, as metadata entries (empty when no rows)."""
    if times.empty:
        return {}
    return {f"{prefix}first_time": dg.MetadataValue.text(times.min().isoformat()),
            f"{prefix}last_time": dg.MetadataValue.text(times.max().isoformat())}


def jsonable(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every value JSON-native: decimals and times as strings (exact, not floats)."""
    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
        return decimal_str(value) if isinstance(value, Decimal) else str(value)

    return [{k: plain(v) for k, v in row.items()} for row in rows]
