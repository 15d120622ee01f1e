"""Asset ``fifo_allocations``: a new FIFO version, computed one step per symbol.

FIFO never crosses symbols, so the work fans out: ``fifo_plan`` fixes the symbols and the
ledger fingerprint, one ``fifo_allocate_symbol`` step per symbol reads and allocates that
symbol (in parallel under the multiprocess executor, or across machines with the celery or
k8s executors), and ``fifo_write_version`` writes all of them as one version in one locked
transaction. Run config stays one ``FifoConfig`` for the asset (a config mapping hands it to
the steps), so the CLI, schedules and the UI configure it the same way as any asset.
"""

import re
from typing import Optional

import dagster as dg

from recon_assets.fifo.service import (Plan, SymbolAllocations, VersionSummary,
                                       allocate_symbols, plan_version, reuse_latest,
                                       write_computed)
from recon_assets.ledger.resources import LedgerResource
from recon_assets.metadata import markdown_table


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
    """A step key for a symbol (Dagster allows letters, digits and underscores only)."""
    return f"{index}_{re.sub(r'[^A-Za-z0-9_]', '_', symbol)}"


@dg.op(ins={"after": dg.In(dg.Nothing)},
       out={"plan": dg.Out(Plan), "symbols": dg.DynamicOut(str)})
def fifo_plan(context: dg.OpExecutionContext, config: FifoConfig, ledger: LedgerResource):
    store = ledger.get_store()
    plan = plan_version(store, config.symbols, config.assume_zero_fees)
    if config.may_reuse() and reuse_latest(store, plan.fingerprint, context.log.info):
        plan = Plan((), plan.fingerprint, plan.started,
                    assume_zero_fees=plan.assume_zero_fees)
    context.log.info(f"{len(plan.symbols)} symbols to allocate from ledger {plan.fingerprint}")
    for index, symbol in enumerate(plan.symbols):
        yield dg.DynamicOutput(symbol, mapping_key=mapping_key(index, symbol),
                               output_name="symbols")
    yield dg.Output(plan, output_name="plan")


@dg.op
def fifo_allocate_symbol(context: dg.OpExecutionContext, symbol: str, plan: Plan,
                         ledger: LedgerResource) -> SymbolAllocations:
    part = allocate_symbols(ledger.get_store(), [symbol], exclude=plan.bad_order_ids,
                            assume_zero_fees=plan.assume_zero_fees)
    context.log.info(f"{symbol}: {part.trade_count} orders -> {len(part.allocations)} "
                     f"allocations ({len(part.problems)} bad rows)")
    return part


@dg.op
def fifo_write_version(context: dg.OpExecutionContext, config: FifoConfig, plan: Plan,
                       parts: list[SymbolAllocations], ledger: LedgerResource) -> int:
    store = ledger.get_store()
    summary = reuse_latest(store, plan.fingerprint, context.log.info) if (
        config.may_reuse() and not parts) else None
    if summary is None:
        summary = write_computed(store, plan, parts, version=config.version,
                                 replace=config.replace, skip_bad_rows=config.skip_bad_rows,
                                 log=context.log.info)
    context.add_output_metadata(summary_metadata(summary))
    return summary.version


def summary_metadata(summary: VersionSummary) -> dict[str, dg.MetadataValue]:
    rows = [{"symbol": s, "realized_pnl_usd": str(p)} for s, p in summary.pnl_by_symbol.items()]
    return {
        "allocation_version": dg.MetadataValue.int(summary.version),
        "allocation_batch_id": dg.MetadataValue.text(summary.batch_id),
        "trade_count": dg.MetadataValue.int(summary.trade_count),
        "allocation_count": dg.MetadataValue.int(summary.allocation_count),
        "unmatched_count": dg.MetadataValue.int(summary.unmatched_count),
        "total_pnl_usd": dg.MetadataValue.text(str(summary.total_pnl_usd)),
        "pnl_by_symbol": markdown_table(rows, ["symbol", "realized_pnl_usd"]),
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


@dg.graph_asset(ins={"database_trades": dg.AssetIn(dagster_type=dg.Nothing)},
                config=fifo_config, group_name="fifo", kinds={"sql"},
                description="FIFO cost-basis allocations, written as a new immutable version "
                            "of fifo_allocations with its fifo_computation_log row; one step "
                            "per symbol.")
def fifo_allocations(database_trades):
    plan, symbols = fifo_plan(database_trades)
    parts = symbols.map(lambda symbol: fifo_allocate_symbol(symbol, plan)).collect()
    return fifo_write_version(plan, parts)
