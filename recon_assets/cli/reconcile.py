"""``reconcile`` and ``backfill``: find missing orders, and review and apply their backfill."""

from __future__ import annotations

import argparse
import json

from sqlalchemy import select

from recon_assets.cli.runner import check_version, log_level, prepare, run_job
from recon_assets.errors import EXIT_CLEAN, EXIT_FINDINGS
from recon_assets.exchange.resources import check_configured
from recon_assets.fifo.service import resolve_version
from recon_assets.ledger import backfill
from recon_assets.ledger.resources import shared_store
from recon_assets.ledger.schema import reconciliation_runs
from recon_assets.metadata import jsonable
from recon_assets.reconcile.scope import check_symbols
from recon_assets.settings import current_user


def run_reconcile(args: argparse.Namespace) -> int:
    settings = prepare()
    check_configured(settings)  # before the ledger is touched: a refusal writes nothing
    store = shared_store(settings.database_url)
    check_symbols(store, args.symbols)  # before any run
    if args.tier == 1 and args.version is not None:  # tier 1 reads that version: it must exist
        check_version(args.version)
        resolve_version(store, args.version)
    config = {"tier": str(args.tier), "version": args.version, "symbols": args.symbols,
              "auto_backfill": args.auto_backfill, "requested_by": current_user()}
    outcome = run_job("reconcile_job", {"missing_orders": config},
                      level="WARNING" if args.json else log_level(args))
    meta = outcome.metadata("missing_orders")
    with store.connect() as conn:
        log_path, findings = conn.execute(
            select(reconciliation_runs.c.log_path, reconciliation_runs.c.summary).where(
                reconciliation_runs.c.id == meta["reconciliation_run_id"])).one()
    found = meta.get("missing_orders", 0) + meta.get("phantom_orders", 0) + \
        meta.get("mismatches", 0) + meta.get("duplicates", 0)
    if args.json:
        print(json.dumps(findings))
    else:
        fills = outcome.metadata("exchange_fills")
        print(f"Synced {fills.get('new_fills', 0)} new fills "
              f"({fills.get('archived_fills', 0)} archived); tier {args.tier} made "
              f"{meta.get('exchange_requests', 0)} exchange requests.")
        with open(log_path, encoding="utf-8") as fh:
            print(fh.read().rstrip())
        print(f"Log: {log_path}")
    return EXIT_FINDINGS if found else EXIT_CLEAN


def run_backfill(args: argparse.Namespace) -> int:
    """Backfill review works on the ledger directly (no asset changes until ``apply``)."""
    store = shared_store(prepare().database_url)
    who = args.by or current_user()
    if args.action == "list":
        with store.connect() as conn:
            frame = backfill.list_requests(conn, args.status)
        rows = jsonable(frame.to_dict("records"))
        if args.json:
            print(json.dumps({"requests": rows}))
            return EXIT_CLEAN
        if not rows:
            print("No backfill requests" + (f" with status {args.status}." if args.status
                                            else "."))
        for r in rows:
            print(f"{r['id']:>5}  {r['status']:<8}  {r['order_id']}  {r['symbol']}  "
                  f"{r['side']:<4}  size {r['size']}  price {r['price']}  "
                  f"fee {r['total_fees_usd']}  {r['order_time']}  (tier {r['tier']}, "
                  f"by {r['created_by']})")
        return EXIT_CLEAN
    with store.locked("backfill") as conn:
        if args.action == "approve":
            done = backfill.approve(conn, args.ids, who)
            print(f"Approved {len(done)} requests: {', '.join(map(str, done))}")
        elif args.action == "reject":
            done = backfill.reject(conn, args.ids, who)
            print(f"Rejected {len(done)} requests: {', '.join(map(str, done))}")
        else:
            result = backfill.apply(conn, args.ids or None, who)
            print(f"Applied {len(result.applied_ids)} requests: inserted "
                  f"{len(result.inserted_order_ids)} orders into trade_records"
                  + (f", {len(result.already_present_order_ids)} were already there"
                     if result.already_present_order_ids else "") + ".")
            if result.inserted_order_ids:
                print("The ledger changed: run `recon-assets fifo` for a new FIFO version "
                      "(under the Dagster daemon the ledger sensor does it by itself).")
    return EXIT_CLEAN
