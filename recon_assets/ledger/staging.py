"""The staging tables of a fanned-out FIFO computation (``fifo_staging_runs``, ``fifo_staging``).

The steps of one ``fifo_allocations`` run may execute on different hosts (Celery workers,
Kubernetes pods), so they exchange their results through the ledger database, never through
a host's disk: the plan step stages the plan under the Dagster run id, each per-symbol step
stages its allocations, and the final step reads them all and deletes them in the same locked
transaction that writes the version. A run that dies leaves staged rows, which never become a
version: :func:`discard` removes them when a later run finds their run no longer active.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import pandas as pd
import pyarrow as pa
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from recon_assets.errors import LedgerError
from recon_assets.fifo.service import Carry, Plan, SymbolAllocations, decimal_scales
from recon_assets.ledger.schema import fifo_staging, fifo_staging_runs


def stage_plan(conn: Connection, run_id: str, plan: Plan) -> None:
    """Record what run ``run_id`` will compute (a retried plan step replaces its own row)."""
    discard(conn, [run_id])
    conn.execute(insert(fifo_staging_runs).values(
        run_id=run_id, symbols=list(plan.symbols), ledger_fingerprint=plan.fingerprint,
        started_at=plan.started, ledger_problems=[list(p) for p in plan.ledger_problems],
        assume_zero_fees=plan.assume_zero_fees, per_symbol={
            "fingerprints": dict(plan.symbol_fingerprints), "settings": dict(plan.settings),
            "carry": plan.carry.to_json() if plan.carry else None}))


def read_plan(conn: Connection, run_id: str, *, lock: bool = False) -> Plan:
    """The plan staged for ``run_id``; a clear error when there is none (cleaned up, or the
    plan step did not run in this run). ``lock`` holds its row until the transaction ends,
    so a concurrent :func:`discard` waits and then sees what this transaction added."""
    query = select(fifo_staging_runs).where(fifo_staging_runs.c.run_id == run_id)
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise LedgerError(f"no staged FIFO plan for run {run_id} in fifo_staging_runs: "
                          "re-execute the whole run (a finished run's staging rows are "
                          "removed)")
    per_symbol = row["per_symbol"] or {"fingerprints": {}, "settings": {},
                                       "carry": None}  # staged before per_symbol existed
    carry = per_symbol["carry"]
    return Plan(tuple(row["symbols"]), row["ledger_fingerprint"], row["started_at"],
                [tuple(p) for p in row["ledger_problems"]],
                assume_zero_fees=row["assume_zero_fees"],
                symbol_fingerprints=per_symbol["fingerprints"],
                settings=per_symbol["settings"],
                carry=Carry.from_json(carry) if carry else None)


def stage_part(conn: Connection, run_id: str, symbol: str, part: SymbolAllocations) -> None:
    """Record one symbol's allocations (exact: an Arrow stream keeps the decimal types).

    Refused when the run's plan is gone (the run was given up and cleaned up while this step
    still ran), so a late step cannot leave rows behind that nothing would promote.
    """
    read_plan(conn, run_id, lock=True)
    conn.execute(delete(fifo_staging).where((fifo_staging.c.run_id == run_id)
                                            & (fifo_staging.c.symbol == symbol)))
    conn.execute(insert(fifo_staging).values(
        run_id=run_id, symbol=symbol, trade_count=part.trade_count,
        problems=[list(p) for p in part.problems],
        allocations=_to_bytes(part.allocations, part.judgments),
        staged_at=datetime.now(timezone.utc)))


def read_parts(conn: Connection, run_id: str, symbols: Iterable[str]
               ) -> list[SymbolAllocations]:
    """The staged results of every planned symbol, in plan order; a missing one is an error
    (a version is written whole or not at all)."""
    table = fifo_staging
    rows = {symbol: (count, problems, data) for symbol, count, problems, data in conn.execute(
        select(table.c.symbol, table.c.trade_count, table.c.problems, table.c.allocations)
        .where(table.c.run_id == run_id))}
    wanted = list(symbols)
    missing = [s for s in wanted if s not in rows]
    if missing:
        raise LedgerError(f"run {run_id}: no staged allocations for {', '.join(missing)} in "
                          "fifo_staging; nothing written")
    parts = []
    for s in wanted:
        count, listed, data = rows.pop(s)  # each part's bytes go once it is decoded
        problems = [tuple(p) for p in listed]
        frame, judgments = _from_bytes(data)
        del data
        parts.append(SymbolAllocations((s,), {s: count}, frame, problems, {s: problems},
                                       {s: decimal_scales(frame)} if len(frame) else {},
                                       judgments))
    return parts


def staged_runs(conn: Connection) -> dict[str, datetime | None]:
    """Every run id with staged rows, and when its plan started (None: parts without a plan)."""
    plans = dict(conn.execute(select(fifo_staging_runs.c.run_id,
                                     fifo_staging_runs.c.started_at)).all())
    parts = conn.execute(select(fifo_staging.c.run_id).distinct()).scalars()
    return {**{run_id: None for run_id in parts}, **plans}


def discard(conn: Connection, run_ids: Iterable[str]) -> None:
    """Delete the staged rows of these runs (plans first: that waits for a step still staging
    a part under the plan's row lock, so its part is then deleted too)."""
    ids = list(run_ids)
    if ids:
        conn.execute(delete(fifo_staging_runs).where(fifo_staging_runs.c.run_id.in_(ids)))
        conn.execute(delete(fifo_staging).where(fifo_staging.c.run_id.in_(ids)))


#: Staged parts are compressed (zstd: about a quarter of the bytes, and the database then
#: neither compresses them again nor ships twice their size as hex); Arrow's reader expands
#: any stream, compressed or not, so parts staged before this still read.
_COMPRESSED = pa.ipc.IpcWriteOptions(compression="zstd")
#: Arrow schema metadata: how each column was held in pandas, so it comes back the same way.
_KINDS = b"recon_assets.column_kinds"
#: Arrow schema metadata: the part's judgments (``SymbolAllocations.judgments``), as JSON.
_JUDGMENTS = b"recon_assets.judgments"


def _to_bytes(frame: pd.DataFrame, judgments: Mapping[str, tuple[str, Any]]) -> bytes:
    kinds = {str(c): "arrow" if isinstance(t, pd.ArrowDtype) else
             "object" if t == object else "pandas" for c, t in frame.dtypes.items()}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _KINDS: json.dumps(kinds).encode(),
                                           _JUDGMENTS: json.dumps(judgments).encode()})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=_COMPRESSED) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _from_bytes(data: bytes) -> tuple[pd.DataFrame, dict[str, tuple[str, Any]]]:
    """The frame as it was staged: Arrow-typed columns (exact decimals) as Arrow columns,
    object columns (order ids, notes) as Python objects with ``None`` kept, the rest
    (timestamps) as pandas converts them; and the part's judgments (none in a part staged
    before they were kept)."""
    table = pa.ipc.open_stream(io.BytesIO(data)).read_all()
    kinds = json.loads(table.schema.metadata[_KINDS])
    judgments = {symbol: (read_as, results) for symbol, (read_as, results) in json.loads(
        table.schema.metadata.get(_JUDGMENTS, b"{}")).items()}
    # only the pandas-typed columns go through pandas' conversion (not the ids and decimals)
    plain = table.select([n for n in table.column_names if kinds[n] == "pandas"]).to_pandas()
    columns = {}
    for name in table.column_names:
        if kinds[name] == "arrow":
            columns[name] = pd.Series(pd.arrays.ArrowExtensionArray(table.column(name)))
        elif kinds[name] == "object":
            columns[name] = pd.Series(table.column(name).to_pylist(), dtype=object)
        else:
            columns[name] = plain[name]
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows)), judgments
