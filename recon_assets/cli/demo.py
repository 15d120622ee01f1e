"""``recon-assets demo``: the whole loop on the embedded default, start to finish.

The demo always uses the embedded SQLite ledger (``$RECON_HOME/ledger.db``, recreated) and the
embedded simulator, whatever ``DATABASE_URL`` or exchange credentials say, so it can never
write into a real ledger.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sqlalchemy import insert

from recon_assets.cli.runner import JobOutcome, log_level, prepare, run_job
from recon_assets.errors import EXIT_CLEAN, EXIT_FINDINGS
from recon_assets.exchange.demo import demo_history
from recon_assets.ledger.schema import trade_records
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import load_settings

EXCHANGE_VARIABLES = ("COINBASE_API_KEY", "COINBASE_API_SECRET", "COINBASE_KEY_FILE",
                      "RECON_EXCHANGE_URL", "RECON_EXCHANGE")


def use_embedded_default() -> str:
    """Point this process at the embedded ledger and simulator; return the ledger URL."""
    settings = load_settings()
    url = f"sqlite:///{settings.recon_home / 'ledger.db'}"
    if settings.database_url != url:
        print(f"Note: the demo uses the embedded ledger {settings.recon_home / 'ledger.db'}, "
              "not DATABASE_URL.")
    os.environ["DATABASE_URL"] = url
    for name in EXCHANGE_VARIABLES:  # empty counts as unset, and beats a .env file
        os.environ[name] = ""
    return url


def seed_ledger(url: str) -> tuple[int, int, int]:
    """Recreate the embedded ledger with the demo bot's records (which have gaps)."""
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    history = demo_history()
    store = LedgerStore(url)
    store.ensure_schema()
    with store.begin() as conn:
        conn.execute(insert(trade_records), [
            {**order, "status": "filled", "source": "demo-bot"}
            for order in history.ledger_orders])
    store.dispose()
    return len(history.ledger_orders), len(history.missing_buy_ids), len(history.missing_sell_ids)


def run_demo(args: argparse.Namespace) -> int:
    url = use_embedded_default()
    settings = prepare()
    level = log_level(args)
    kept, buys, sells = seed_ledger(url)
    print(f"Seeded the embedded ledger with {kept} orders; the bot lost {buys} buys and "
          f"{sells} sells that the exchange still has.")

    synced = run_job("sync_job", level=level).metadata("exchange_fills")
    print(f"1. sync: {synced.get('new_fills')} fills from the embedded simulator "
          f"({synced.get('requests')} requests through the Coinbase SDK)")

    store = LedgerStore(url)
    first = _fifo(store, level, "2. FIFO")
    for tier in (1, 2):
        _reconcile(tier, level, auto_backfill=False)
    _reconcile(3, level, auto_backfill=True)
    second = _fifo(store, level, "6. FIFO after backfill")
    store.dispose()

    final = run_job("validate_job", {"validate_fifo_allocations": {"strict": True}},
                    level=level, partition_key=str(second["allocation_version"]))
    failed = [c.check_name for c in final.checks if not c.passed]
    print(f"7. strict validation of version {second['allocation_version']}: "
          + ("all checks pass" if not failed else "FAILED " + ", ".join(failed)))
    before, after = first["total_pnl_usd_exact"], second["total_pnl_usd_exact"]
    print(f"\nRealized PnL: {before} USD in version {first['allocation_version']} "
          f"({first['unmatched_count']} unmatched sells) -> {after} USD in version "
          f"{second['allocation_version']} ({second['unmatched_count']} unmatched sells).")
    print(f"Ledger: {settings.recon_home / 'ledger.db'}; logs: {settings.logs_dir}; "
          f"Dagster runs: {os.environ['DAGSTER_HOME']} (see them with "
          "`recon-assets ui`).")
    return EXIT_FINDINGS if failed else EXIT_CLEAN


def _fifo(store: LedgerStore, level: str, label: str) -> dict:
    """Materialize the next version partition (the ledger is new, or it was backfilled)."""
    from recon_assets.fifo.service import plan_new_version

    version = plan_new_version(store).version
    outcome: JobOutcome = run_job("fifo_job", level=level, partition_key=str(version))
    meta = outcome.metadata("fifo_allocations")
    warned = [c.check_name for c in outcome.checks if not c.passed]
    print(f"{label}: version {meta['allocation_version']}, {meta['allocation_count']} "
          f"allocations, {meta['unmatched_count']} unmatched sells, realized PnL "
          f"{meta['total_pnl_usd_exact']} USD" + (f" (checks: {', '.join(warned)})" if warned else ""))
    return meta


def _reconcile(tier: int, level: str, *, auto_backfill: bool) -> None:
    outcome = run_job("reconcile_job", {"missing_orders": {
        "tier": str(tier), "auto_backfill": auto_backfill, "requested_by": "demo"}}, level=level)
    meta = outcome.metadata("missing_orders")
    step = {1: "3", 2: "4", 3: "5"}[tier]
    print(f"{step}. tier {tier}: Missing BUY orders found: {meta['missing_buys']} "
          f"(missing orders {meta['missing_orders']}, phantom {meta['phantom_orders']}, "
          f"mismatches {meta['mismatches']}, duplicates {meta['duplicates']}; "
          f"{meta['exchange_requests']} exchange requests)"
          + (f"; backfilled {meta['backfilled_orders']} orders" if auto_backfill else ""))
