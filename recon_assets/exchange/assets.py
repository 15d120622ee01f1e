"""Asset ``exchange_fills``: the fills archive, pulled incrementally from the exchange."""


import dagster as dg
import pandas as pd
from tqdm import tqdm

from recon_assets.exchange.models import is_fill, is_spot
from recon_assets.exchange.resources import ExchangeResource
from recon_assets.exchange.sync import sync_fills
from recon_assets.ledger.fills import read_fills, under_review
from recon_assets.ledger.resources import LedgerResource
from recon_assets.metadata import column_schema, jsonable, metadata_table, row_count, time_range
from recon_assets.reconcile.aggregate import find_duplicate_fills

CHECKS = [
    dg.AssetCheckSpec("check_exchange_fills_no_duplicates", asset="exchange_fills",
                      description="No fill is archived twice under different trade ids "
                                  "(same order, time, price and size)."),
    dg.AssetCheckSpec("check_exchange_fills_no_conflicts", asset="exchange_fills",
                      description="No trade id was reported twice with different values "
                                  "(every version is kept in exchange_fill_conflicts)."),
    dg.AssetCheckSpec("check_exchange_fills_only_fills", asset="exchange_fills",
                      description="No REVERSAL, CORRECTION or SYNTHETIC entry awaits review "
                                  "(kept in exchange_fill_entries, never counted)."),
    dg.AssetCheckSpec("check_exchange_fills_schema", asset="exchange_fills",
                      description="Every archived fill has an order id, a product, a side, "
                                  "times, and positive price and size."),
]


_SHOWN = ["trade_id", "entry_id", "order_id", "trade_type", "product_id", "side", "trade_time",
          "price", "size", "commission", "size_in_quote"]


@dg.asset(check_specs=CHECKS, group_name="exchange", kinds={"python"},
          description="Coinbase fills, synced incrementally from the last sequence_timestamp "
                      "into the exchange_fills archive (kept beyond the exchange's ~12-week "
                      "retention; deduplicated on trade_id). REVERSAL, CORRECTION and "
                      "SYNTHETIC entries and conflicting reports of a trade are kept apart "
                      "for review; fills of non-spot products are archived, not reconciled.")
def exchange_fills(context: dg.AssetExecutionContext, exchange: ExchangeResource,
                   ledger: LedgerResource):
    exchange.check_configured()
    store = ledger.get_store()
    conflicts_before, entries_before = under_review(store)
    with exchange.get_client() as client, tqdm(unit=" fills", desc="sync fills",
                                               disable=None, leave=False) as bar:
        pages = [0]

        def progress(count: int) -> None:
            bar.update(count)
            pages[0] += 1
            if pages[0] % 20 == 0:
                context.log.info(f"fetched {bar.n} fills in {pages[0]} pages so far")

        result = sync_fills(client, store, progress=progress)
    context.log.info(f"fetched {result.fetched} fills in {result.requests} requests, "
                     f"{result.new_fills} new")
    archive = read_fills(store)
    _warn_new(context, archive, conflicts_before, entries_before)
    conflicts = archive[archive["trade_id"].isin(archive["trade_id"][archive["conflicting"]])]
    entries = archive[~is_fill(archive)]
    archive = archive[~archive["conflicting"] & is_fill(archive)]
    duplicates = find_duplicate_fills(archive)
    invalid = _invalid_fills(archive)
    non_spot = archive[~is_spot(archive["product_id"])]
    if len(non_spot):
        context.log.info(
            f"{len(non_spot)} archived fills of non-spot products "
            f"({', '.join(sorted(non_spot['product_id'].unique()))}) are left out of FIFO and "
            "reconciliation")
    yield dg.MaterializeResult(metadata={
        "new_fills": dg.MetadataValue.int(result.new_fills),
        "fetched_fills": dg.MetadataValue.int(result.fetched),
        "requests": dg.MetadataValue.int(result.requests),
        "archived_fills": dg.MetadataValue.int(len(archive)),
        **row_count(len(archive)),
        **column_schema([(c, "decimal" if c in ("price", "size", "commission") else "text")
                         for c in _SHOWN]),
        "archived_orders": dg.MetadataValue.int(int(archive["order_id"].nunique())),
        "products": dg.MetadataValue.text(", ".join(sorted(archive["product_id"].unique()))),
        "non_spot_fills": dg.MetadataValue.int(len(non_spot)),
        "conflicting_reports": dg.MetadataValue.int(int(conflicts["conflicting"].sum())),
        "non_fill_entries": dg.MetadataValue.int(len(entries)),
        "non_spot_products": dg.MetadataValue.text(
            ", ".join(sorted(non_spot["product_id"].unique()))),
        **time_range(archive["trade_time"]),
        "sync_cursor": dg.MetadataValue.text(result.cursor_after or ""),
        "exchange_source": dg.MetadataValue.text(client.source),
    })
    dup_rows = jsonable(duplicates.to_dict("records"))
    yield dg.AssetCheckResult(check_name="check_exchange_fills_no_duplicates",
                              passed=duplicates.empty,
                              metadata={"duplicates": len(duplicates),
                                        "rows": metadata_table(dup_rows, list(duplicates.columns))})
    yield dg.AssetCheckResult(
        check_name="check_exchange_fills_no_conflicts", passed=conflicts.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"conflicting_trade_ids": int(conflicts["trade_id"].nunique()),
                  "rows": metadata_table(jsonable(conflicts.to_dict("records")), _SHOWN)})
    yield dg.AssetCheckResult(
        check_name="check_exchange_fills_only_fills", passed=entries.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"entries": len(entries),
                  "orders": dg.MetadataValue.text(", ".join(sorted(entries["order_id"].unique()))),
                  "rows": metadata_table(jsonable(entries.to_dict("records")), _SHOWN)})
    yield dg.AssetCheckResult(check_name="check_exchange_fills_schema", passed=invalid == 0,
                              metadata={"invalid_fills": int(invalid)})


def _warn_new(context: dg.AssetExecutionContext, archive: pd.DataFrame,
              conflicts_before: int, entries_before: int) -> None:
    """Say loudly what this sync added for review: conflicting reports, non-FILL entries."""
    conflicting = archive[archive["conflicting"]]
    if len(conflicting) > conflicts_before:
        context.log.warning(
            f"{len(conflicting) - conflicts_before} new conflicting reports of archived trade "
            f"ids (the first report counts; review exchange_fill_conflicts): trade ids "
            f"{', '.join(sorted(conflicting['trade_id'].unique())[:20])}")
    entries = archive[~is_fill(archive)]
    if len(entries) > entries_before:
        orders = ", ".join(sorted(entries["order_id"].unique())[:20])
        context.log.warning(f"{len(entries) - entries_before} new non-FILL entries, not "
                            f"counted (review exchange_fill_entries): orders {orders}")


def _invalid_fills(archive: pd.DataFrame) -> int:
    """Archived fills breaking the fills-frame rules (rows written before a rule existed, or
    by another tool)."""
    bad = (archive["size"].map(lambda v: v <= 0) | archive["price"].map(lambda v: v <= 0)
           | ~archive["side"].isin(["BUY", "SELL"]))
    return int(bad.sum())
