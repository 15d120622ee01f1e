"""Asset ``fifo_allocations``: a new FIFO version, computed one step per symbol.

FIFO never crosses symbols, so the work fans out: ``fifo_plan`` fixes the symbols and the
ledger fingerprint, one ``fifo_allocate_symbol`` step per symbol reads and allocates that
symbol (in parallel under the multiprocess executor, or across machines with the celery or
k8s executors) and judges it by the validation rules while its allocations and orders are in
memory, and ``fifo_write_version`` writes all of them as one version in one locked
transaction, recording those judgments (so the checks do not read the version back). The
steps hand each other nothing through Dagster's IO manager (whose default keeps pickles on
the local disk, out of reach of a worker on another host): every output is
``Nothing``, and the plan and the per-symbol results go through the ledger's staging tables
under the run id (``recon_assets.ledger.staging``). Run config stays one ``FifoConfig`` for the
asset (a config mapping hands it to the steps), so the CLI, schedules and the UI configure it
the same way as any asset.
"""

import os
import re
import socket
from datetime import datetime, timedelta, timezone
from typing import Iterator

import dagster as dg

from pydantic import Field

from recon_assets.errors import VersionError
from recon_assets.fifo.partitions import FIFO_VERSIONS, version_of
from recon_assets.fifo.service import (Plan, VersionSummary, allocate_symbols, plan_version,
                                       stored_summary, unchanged_since, write_computed)
from recon_assets.ledger import staging, versions
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets.metadata import metadata_table, money, row_count

#: Staged rows of a run this Dagster instance does not know (another instance on the same
#: ledger, or a deleted run) are left alone this long before they count as abandoned.
UNKNOWN_RUN_GRACE = timedelta(hours=24)


class FifoConfig(dg.Config):
    """How to compute the partition's version (SPEC section 3; the partition key is the
    version number)."""

    replace: bool = Field(False, description=(
        "Recompute the partition's version in place when it exists and is not validated yet "
        "(a validated version is immutable)."))
    force: bool = Field(False, description=(
        "Write the partition's new version even when nothing FIFO reads changed since the "
        "latest version of the same scope (otherwise nothing is written and the run says so). "
        "A forced version recomputes every symbol, copying none from the version before."))
    symbols: list[str] = Field([], description=(
        "Compute only these symbols (default: every symbol of trade_records)."))
    skip_bad_rows: bool = Field(False, description=(
        "Leave unusable ledger rows out (listed in fifo_computation_log.skipped_rows) instead "
        "of refusing to write the version."))
    assume_zero_fees: bool = Field(False, description=(
        "Compute over a trade_records without total_fees_usd, every fee 0 (else refused)."))


def stored_version(store: LedgerStore, config: FifoConfig, version: int
                   ) -> versions.VersionInfo | None:
    """The partition's version as stored, when this run must report it rather than write
    it; raises when it may not be rewritten (validated, and ``replace`` asked)."""
    with store.connect() as conn:
        info = versions.get_version(conn, version)
    if info is None or not config.replace:
        return info
    if info.status == versions.STATUS_VALIDATED:
        raise VersionError(f"FIFO version {version} is validated and immutable; compute a new "
                           "version instead")
    return None


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
    version = version_of(context)
    plan = plan_version(store, config.symbols, config.assume_zero_fees, version=version,
                        skip_bad_rows=config.skip_bad_rows, carry=not config.force)
    existing = stored_version(store, config, version)
    same = None if config.force or config.replace or existing else unchanged_since(
        store, plan.fingerprint, plan.scope)  # the scope the plan read: no second census
    if existing is not None or same is not None:
        context.log.info(f"version {version} exists: reporting it as stored" if existing else
                         f"nothing FIFO reads changed since version {same.version}: version "
                         f"{version} is not written (force: true writes it anyway)")
        plan = Plan((), plan.fingerprint, plan.started,
                    assume_zero_fees=plan.assume_zero_fees)
    with store.begin() as conn:
        staging.stage_plan(conn, context.run_id, plan)
    carried = (f"; {len(plan.carry.symbols)} unchanged since version {plan.carry.version} are "
               "copied" if plan.carry else "")
    context.log.info(f"{len(plan.symbols)} symbols to allocate from ledger "
                     f"{plan.fingerprint}{carried}")
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
                            assume_zero_fees=plan.assume_zero_fees, judge=True)
    with store.begin() as conn:
        staging.stage_part(conn, context.run_id, symbol, part)
    judged = ", judged" if part.judgments else ""
    context.log.info(f"{symbol}: {part.trade_count} orders -> {len(part.allocations)} "
                     f"allocations ({len(part.problems)} bad rows{judged}), staged by "
                     f"{_where()}")


@dg.op(ins={"planned": dg.In(dg.Nothing), "parts": dg.In(dg.Nothing)},
       out=dg.Out(dg.Nothing, is_required=False))
def fifo_write_version(context: dg.OpExecutionContext, config: FifoConfig,
                       ledger: LedgerResource) -> Iterator[dg.Output]:
    """Write the partition's version, or report it as stored; with nothing changed and no
    ``force``, materialize nothing (the partition stays empty: no duplicate version)."""
    store = ledger.get_store()
    run_id = context.run_id
    version = version_of(context)
    try:
        with store.connect() as conn:
            plan = staging.read_plan(conn, run_id)
            parts = staging.read_parts(conn, run_id, plan.symbols)
        summary = None
        if not parts and plan.carry is None:
            existing = stored_version(store, config, version)
            if existing is None and not (config.force or config.replace) and unchanged_since(
                    store, plan.fingerprint, plan.scope) is not None:
                with store.begin() as conn:
                    staging.discard(conn, [run_id])
                return
            summary = stored_summary(existing) if existing is not None else None
        if summary is None:
            # the ledger as the write starts, scanned by the server while the version is
            # written (the write waits on the server too)
            with store.fingerprint_alongside() as ledger_now:
                summary = _write_or_report(store, plan, parts, config, version, run_id,
                                           context.log.info)
                current = str(ledger_now())
        else:
            with store.begin() as conn:
                staging.discard(conn, [run_id])
            current = str(store.fingerprint())
    except Exception:
        # A refused or failed write (bad rows, a version conflict) ends the run: its staged
        # rows can never become a version, so they go now, not at the next run.
        with store.begin() as conn:
            staging.discard(conn, [run_id])
        raise
    done = "reported as stored" if summary.reused else "written"
    context.log.info(f"version {summary.version} {done} by {_where()}")
    yield dg.Output(None, data_version=dg.DataVersion(summary.ledger_fingerprint),
                    metadata={**summary_metadata(summary), "ledger_changed_since_version":
                              dg.MetadataValue.bool(current != summary.ledger_fingerprint)})


def _write_or_report(store: LedgerStore, plan: Plan, parts: list, config: FifoConfig,
                     version: int, run_id: str, log) -> VersionSummary:
    """Write ``version``; when another run wrote it meanwhile from the same ledger, report
    that one (a race for the same new version is not an error, nor a duplicate)."""
    try:
        return write_computed(store, plan, parts, version=version, replace=config.replace,
                              skip_bad_rows=config.skip_bad_rows, log=log,
                              finish=lambda conn: staging.discard(conn, [run_id]))
    except VersionError:
        existing = stored_version(store, FifoConfig(), version)
        if existing is None:
            raise  # not a race for this version (its predecessor changed, say): as it says
        if existing.ledger_fingerprint != plan.fingerprint:
            raise VersionError(f"FIFO version {version} was written by another run meanwhile "
                               "from another state of the ledger; nothing written by this run")
        with store.begin() as conn:
            staging.discard(conn, [run_id])
        log(f"version {version} was written meanwhile by another run from the same ledger")
        return stored_summary(existing)


def summary_metadata(summary: VersionSummary) -> dict[str, dg.MetadataValue]:
    rows = [{"symbol": s, "realized_pnl_usd": p} for s, p in summary.pnl_by_symbol.items()]
    return {
        "allocation_version": dg.MetadataValue.int(summary.version),
        "allocation_batch_id": dg.MetadataValue.text(summary.batch_id),
        "trade_count": dg.MetadataValue.int(summary.trade_count),
        "allocation_count": dg.MetadataValue.int(summary.allocation_count),
        **row_count(summary.allocation_count),
        "unmatched_count": dg.MetadataValue.int(summary.unmatched_count),
        **money("total_pnl_usd", summary.total_pnl_usd),
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
                partitions_def=FIFO_VERSIONS,
                description="FIFO cost-basis allocations, one partition per version: "
                            "materializing a new partition writes that version (immutable once "
                            "validated) with its fifo_computation_log row, one step per "
                            "symbol; an existing version is reported as stored.")
def fifo_allocations(trade_records):
    planned, symbols = fifo_plan(trade_records)
    parts = symbols.map(lambda symbol: fifo_allocate_symbol(symbol=symbol)).collect()
    return fifo_write_version(planned=planned, parts=parts)
