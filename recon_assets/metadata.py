"""Small builders for Dagster metadata shared by the assets: tables, numbers, time ranges.

The UI plots numeric entries over materializations and renders table entries as tables, so
counts are ints, money is a float beside its exact decimal text (``<name>`` and
``<name>_exact``), times are timestamps, and row lists are ``TableMetadataValue``s.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Sequence

import dagster as dg
import pandas as pd

from recon_assets.money import decimal_str

#: Rows kept in a table entry; the full count is always reported beside it.
TABLE_LIMIT = 20


def metadata_table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
          limit: int = TABLE_LIMIT) -> dg.MetadataValue:
    """The first ``limit`` rows as a Dagster table (every cell as text: exact decimals and
    ISO times, so nothing is rounded on the way to the UI)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns])
    records = [dg.TableRecord({c: _cell(row.get(c)) for c in columns}) for row in rows[:limit]]
    return dg.MetadataValue.table(records, schema=schema)


def _cell(value: Any) -> str:
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return decimal_str(value) if isinstance(value, Decimal) else str(value)


def problems_table(problems: Iterable[tuple[str, str, str]]) -> dg.MetadataValue:
    """``(row id, field, message)`` problems as a table."""
    rows = [{"order_id": r, "field": f, "problem": m} for r, f, m in problems]
    return metadata_table(rows, ["order_id", "field", "problem"])


def money(name: str, value: Decimal | None) -> dict[str, dg.MetadataValue]:
    """``name`` as a float the UI can plot, and ``name_exact`` as the exact decimal text."""
    if value is None:
        return {f"{name}_exact": dg.MetadataValue.text("none")}
    return {name: dg.MetadataValue.float(float(value)),
            f"{name}_exact": dg.MetadataValue.text(decimal_str(value))}


def row_count(count: int) -> dict[str, dg.MetadataValue]:
    """The standard ``dagster/row_count`` entry (the UI shows it on the asset's page)."""
    return {"dagster/row_count": dg.MetadataValue.int(int(count))}


def column_schema(columns: Sequence[tuple[str, str]]) -> dict[str, dg.MetadataValue]:
    """The standard ``dagster/column_schema`` entry from ``(name, type)`` pairs."""
    return {"dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(
        columns=[dg.TableColumn(name, kind) for name, kind in columns]))}


def time_range(times: pd.Series, prefix: str = "") -> dict[str, dg.MetadataValue]:
    """First and last timestamp of a column, as timestamp entries (empty when no rows)."""
    if times.empty:
        return {}
    return {f"{prefix}first_time": _timestamp(times.min()),
            f"{prefix}last_time": _timestamp(times.max())}


def _timestamp(value: pd.Timestamp | datetime) -> dg.MetadataValue:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return dg.MetadataValue.timestamp(stamp.to_pydatetime())


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
