"""Asset ``fifo_allocations``: a new FIFO version, computed one step per symbol.

FIFO never crosses symbols, so the work fans out: ``fifo_plan`` fixes the symbols and the
ledger fingerprint, one ``fifo_allocate_symbol`` step per symbol reads and allocates that
symbol (in parallel under the multiprocess executor, or across machines with the celery or
k8s executors), and ``fifo_write_version`` writes all of them as one version in one locked
transaction. The steps hand each other nothing through Dagster's IO manager (whose default
keeps pickles on the local disk, out of reach of a worker on another host): every output is
``Nothing``, and the plan and the per-symbol results go through the ledger's staging tables
under the run id (``recon_assets.ledger.staging``). Run config stays one ``FifoConfig`` for the
asset (a config mapping hands it to the steps), so the CLI, schedules and the UI configure it
the same way as any asset.
"""

import os
import re
import socket
from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional

import dagster as dg

from recon_assets.fifo.service import (Plan, VersionSummary, allocate_symbols, plan_version,
                                       reuse_latest, write_computed)
from recon_assets.ledger import staging
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets.metadata import metadata_table

#: Staged rows of a run this Dagster instance does not know (another instance on the same
#: ledger, or a deleted run) are left alone this long before they count as abandoned.
UNKNOWN_RUN_GRACE = timedelta(hours=24)


class FifoConfig(dg.Config):
    """How to compute: SPEC section 3 (max + 1 unless a version is given; --replace)."""

    version: Optional[int] = None
    replace: bool = False
    symbols: list[str] = []
    skip_bad_rows: bool = False
    only_if_changed: bool = False
    #: compute over a trade_records without total_fees_usd, every fee 0 (else refused)
    assume_zero_fees: bool = False

    def may_reuse(self) -> bool:
        return self.only_if_changed and self.version is None and not self.symbols


def mapping_key(index: int, symbol: str) -> str:
    """A step key for a symbol (Dagster allows letters, digits and underscores only); the
    leading index is the symbol's place in the staged plan."""
    return f"{index}_{re.sub(r'[^A-Za-z0-9_]', '_', symbol)}"


def discard_abandoned_staging(store: LedgerStore, instance: dg.DagsterInstance,
                              current_run_id: str) -> list[str]:
    """Delete the staged rows of runs that can no longer finish: runs the instance reports
    finished (failed, canceled, or succeeded after a crash between commit and cleanup), and
    runs it does not know whose plan is older than :data:`UNKNOWN_RUN_GRACE`."""
    cutoff = datetime.now(timezone.utc) - UNKNOWN_RUN_GRACE
    with store.begin() as conn:
        abandoned = []
        for run_id, started in staging.staged_runs(conn).items():
            if run_id == current_run_id:
                continue
            run = instance.get_run_by_id(run_id)
            if (run is not None and run.is_finished) or (
                    run is None and (started is None or started < cutoff)):
                abandoned.append(run_id)
        staging.discard(conn, abandoned)
    return abandoned


def _where() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


@dg.op(ins={"after": dg.In(dg.Nothing)},
       out={"planned": dg.Out(dg.Nothing), "symbols": dg.DynamicOut(dg.Nothing)})
def fifo_plan(context: dg.OpExecutionContext, config: FifoConfig,
              ledger: LedgerResource) -> Iterator[dg.Output | dg.DynamicOutput]:
    store = ledger.get_store()
    abandoned = discard_abandoned_staging(store, context.instance, context.run_id)
    if abandoned:
        context.log.info(f"discarded the staged FIFO rows of ended runs {', '.join(abandoned)}")
    plan = plan_version(store, config.symbols, config.assume_zero_fees)
    if config.may_reuse() and reuse_latest(store, plan.fingerprint, context.log.info):
        plan = Plan((), plan.fingerprint, plan.started,
                    assume_zero_fees=plan.assume_zero_fees)
    with store.begin() as conn:
        staging.stage_plan(conn, context.run_id, plan)
    context.log.info(f"{len(plan.symbols)} symbols to allocate from ledger {plan.fingerprint}")
    yield dg.Output(None, output_name="planned")
    for index, symbol in enumerate(plan.symbols):
        yield dg.DynamicOutput(None, mapping_key=mapping_key(index, symbol),
                               output_name="symbols")


@dg.op(ins={"symbol": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def fifo_allocate_symbol(context: dg.OpExecutionContext, ledger: LedgerResource) -> None:
    store = ledger.get_store()
    with store.connect() as conn:
        plan = staging.read_plan(conn, context.run_id)
    symbol = plan.symbols[int(context.get_mapping_key().split("_", 1)[0])]
    part = allocate_symbols(store, [symbol], exclude=plan.bad_order_ids,
                            assume_zero_fees=plan.assume_zero_fees)
    with store.begin() as conn:
        staging.stage_part(conn, context.run_id, symbol, part)
    context.log.info(f"{symbol}: {part.trade_count} orders -> {len(part.allocations)} "
                     f"allocations ({len(part.problems)} bad rows), staged by {_where()}")


@dg.op(ins={"planned": dg.In(dg.Nothing), "parts": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def fifo_write_version(context: dg.OpExecutionContext, config: FifoConfig,
                       ledger: LedgerResource) -> None:
    store = ledger.get_store()
    run_id = context.run_id
    try:
        with store.connect() as conn:
            plan = staging.read_plan(conn, run_id)
            parts = staging.read_parts(conn, run_id, plan.symbols)
        summary = reuse_latest(store, plan.fingerprint, context.log.info) if (
            config.may_reuse() and not parts) else None
        if summary is None:
            summary = write_computed(store, plan, parts, version=config.version,
                                     replace=config.replace,
                                     skip_bad_rows=config.skip_bad_rows, log=context.log.info,
                                     finish=lambda conn: staging.discard(conn, [run_id]))
        else:
            with store.begin() as conn:
                staging.discard(conn, [run_id])
    except Exception:
        # A refused or failed write (bad rows, a version conflict) ends the run: its staged
        # rows can never become a version, so they go now, not at the next run.
        with store.begin() as conn:
            staging.discard(conn, [run_id])
        raise
    context.log.info(f"version {summary.version} {'reused' if summary.reused else 'written'} "
                     f"by {_where()}")
    context.add_output_metadata(summary_metadata(summary))


def summary_metadata(summary: VersionSummary) -> dict[str, dg.MetadataValue]:
    rows = [{"symbol": s, "realized_pnl_usd": str(p)} for s, p in summary.pnl_by_symbol.items()]
    return {
        "allocation_version": dg.MetadataValue.int(summary.version),
        "allocation_batch_id": dg.MetadataValue.text(summary.batch_id),
        "trade_count": dg.MetadataValue.int(summary.trade_count),
        "allocation_count": dg.MetadataValue.int(summary.allocation_count),
        "unmatched_count": dg.MetadataValue.int(summary.unmatched_count),
        "total_pnl_usd": dg.MetadataValue.text(str(summary.total_pnl_usd)),
        "pnl_by_symbol": metadata_table(rows, ["symbol", "realized_pnl_usd"]),
        "skipped_bad_rows": dg.MetadataValue.int(len(summary.skipped_rows)),
        "ledger_fingerprint": dg.MetadataValue.text(summary.ledger_fingerprint),
        "duration_ms": dg.MetadataValue.int(summary.duration_ms),
        "reused_existing_version": dg.MetadataValue.bool(summary.reused),
    }


@dg.config_mapping
def fifo_config(config: FifoConfig) -> dict:
    """One FifoConfig for the asset, handed to the steps that need it."""
    values = {"config": config.model_dump()}
    return {"fifo_plan": values, "fifo_write_version": values}


@dg.graph_asset(ins={"trade_records": dg.AssetIn(dagster_type=dg.Nothing)},
                config=fifo_config, group_name="fifo", kinds={"sql"},
                description="FIFO cost-basis allocations, written as a new immutable version "
                            "of fifo_allocations with its fifo_computation_log row; one step "
                            "per symbol.")
def fifo_allocations(trade_records):
    planned, symbols = fifo_plan(trade_records)
    parts = symbols.map(lambda symbol: fifo_allocate_symbol(symbol=symbol)).collect()
    return fifo_write_version(planned=planned, parts=parts)
