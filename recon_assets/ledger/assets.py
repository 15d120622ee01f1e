"""Asset ``database_trades``: the bot's ``trade_records``, normalized, with its checks."""


import dagster as dg

from recon_assets.ledger.resources import LedgerResource
from recon_assets.metadata import column_schema, problems_table, row_count, time_range
from recon_assets.trades import TRADE_COLUMNS

CHECKS = [
    dg.AssetCheckSpec("check_database_trades_schema", asset="database_trades",
                      description="trade_records has every column SPEC section 2 reads."),
    dg.AssetCheckSpec("check_database_trades_no_duplicates", asset="database_trades",
                      description="No order id appears twice in trade_records."),
    dg.AssetCheckSpec("check_database_trades_valid_rows", asset="database_trades",
                      description="Every row has a known side, a time, and positive size and "
                                  "price; FIFO refuses to write a version over bad rows."),
]


@dg.asset(check_specs=CHECKS, group_name="ledger", kinds={"sql"},
          description="The bot's trade_records, one row per order, read exactly "
                      "(money as decimals, sides lowercase, times UTC).")
def database_trades(context: dg.AssetExecutionContext, ledger: LedgerResource):
    store = ledger.get_store()
    columns = store.table_columns("trade_records")
    # a missing fee column is reported by the schema check; FIFO refuses it unless assumed
    # the fingerprint of exactly the rows read, scanned by the server during the read
    with store.snapshot() as conn, store.fingerprint_alongside(conn) as fingerprint_of_read:
        result = store.read_trades(assume_zero_fees=True, columnar=True, conn=conn)
        fingerprint = fingerprint_of_read()
    trades = result.trades
    duplicates = [p for p in result.problems if p[2] == "duplicate order id"]
    other = [p for p in result.problems if p[2] != "duplicate order id"]
    context.log.info(f"read {len(trades)} orders from {store.display_url}"
                     f" ({len(result.problems)} unusable rows)")
    missing = [c for c in TRADE_COLUMNS if c not in columns]
    yield dg.MaterializeResult(metadata={
        "row_count": dg.MetadataValue.int(len(trades)),
        **row_count(len(trades)),
        **column_schema([("order_id", "text"), ("symbol", "text"), ("side", "buy | sell"),
                         ("order_time", "timestamp (UTC)"), ("price", "decimal"),
                         ("size", "decimal (base units)"),
                         ("total_fees_usd", "decimal (quote, NULL = 0)")]),
        "bad_rows": dg.MetadataValue.int(len(result.bad_order_ids)),
        "symbols": dg.MetadataValue.text(", ".join(sorted(trades["symbol"].unique()))),
        **time_range(trades["order_time"]),
        "ledger_fingerprint": dg.MetadataValue.text(str(fingerprint)),
        "ledger": dg.MetadataValue.text(store.display_url),
    })
    # only the fee column missing: WARN, as `fifo --assume-zero-fees` computes without it
    severity = (dg.AssetCheckSeverity.WARN if missing == ["total_fees_usd"]
                else dg.AssetCheckSeverity.ERROR)
    yield dg.AssetCheckResult(check_name="check_database_trades_schema", passed=not missing,
                              severity=severity,
                              metadata={"missing_columns": ", ".join(missing) or "none"})
    yield dg.AssetCheckResult(check_name="check_database_trades_no_duplicates",
                              passed=not duplicates,
                              metadata={"duplicates": len(duplicates),
                                        "rows": problems_table(duplicates),
                                        **_failing(duplicates)})
    yield dg.AssetCheckResult(check_name="check_database_trades_valid_rows", passed=not other,
                              metadata={"bad_rows": len(other), "rows": problems_table(other),
                                        **_failing(other)})


def _failing(problems: list[tuple[str, str, str]]) -> dict[str, dg.MetadataValue]:
    """The ``failing_count``/``failing`` entries every check carries (the CLI and alerts show
    them), first 100 rows."""
    rows = [{"order_id": r, "field": f, "problem": m} for r, f, m in problems[:100]]
    return {"failing_count": dg.MetadataValue.int(len(problems)),
            "failing": dg.MetadataValue.json(rows)}
