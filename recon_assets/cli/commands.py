"""``sync``, ``fifo`` and ``validate``: run their jobs and say what happened."""

from __future__ import annotations

import argparse
import json
from typing import Any

from recon_assets.cli.runner import JobOutcome, check_version, log_level, run_job
from recon_assets.errors import EXIT_CLEAN, EXIT_FINDINGS


def run_sync(args: argparse.Namespace) -> int:
    """Exit 1 when a check of the archive or the ledger failed at ERROR (conflicting reports,
    non-FILL entries, bad rows): a finding, like a failed validation."""
    outcome = run_job("sync_job", level=log_level(args))
    fills = outcome.metadata("exchange_fills")
    trades = outcome.metadata("database_trades")
    print(f"Synced {fills.get('new_fills', 0)} new fills from {fills.get('exchange_source')} "
          f"({fills.get('archived_fills', 0)} in the archive, {fills.get('requests', 0)} "
          f"exchange requests); ledger has {trades.get('row_count', 0)} orders.")
    review = {k: fills.get(k, 0) for k in ("non_fill_entries", "conflicting_reports")}
    if any(review.values()):
        print(f"  kept for review: {review['non_fill_entries']} non-FILL entries "
              f"(exchange_fill_entries), {review['conflicting_reports']} conflicting reports "
              "(exchange_fill_conflicts)")
    return report_checks(outcome, strict=False)


def fifo_config(args: argparse.Namespace) -> dict[str, Any]:
    return {"version": args.version, "replace": args.replace, "symbols": args.symbols,
            "skip_bad_rows": args.skip_bad_rows, "assume_zero_fees": args.assume_zero_fees}


def run_fifo(args: argparse.Namespace) -> int:
    check_version(args.version)
    outcome = run_job("fifo_job", {"fifo_allocations": fifo_config(args)},
                      level=log_level(args))
    meta = outcome.metadata("fifo_allocations")
    print(f"FIFO version {meta.get('allocation_version')}: {meta.get('allocation_count')} "
          f"allocations over {meta.get('trade_count')} orders, {meta.get('unmatched_count')} "
          f"unmatched sells, total realized PnL {meta.get('total_pnl_usd')} USD")
    if meta.get("skipped_bad_rows"):
        print(f"  skipped {meta['skipped_bad_rows']} bad ledger rows (listed in "
              "fifo_computation_log.skipped_rows)")
    return report_checks(outcome, strict=False)


def run_validate(args: argparse.Namespace) -> int:
    check_version(args.version)
    outcome = run_job("validate_job", {"validate_fifo_allocations": {
        "version": args.version, "strict": args.strict}}, level=log_level(args))
    if args.json:
        checks = [check_json(c) for c in outcome.checks]
        version = next((c["allocation_version"] for c in checks), args.version)
        failed = any(not c["passed"] and c["severity"] == "ERROR" for c in checks)
        print(json.dumps({"version": version, "strict": args.strict, "passed": not failed,
                          "run_id": outcome.run_id, "checks": checks}))
        return EXIT_FINDINGS if failed else EXIT_CLEAN
    return report_checks(outcome, strict=args.strict)


def check_json(evaluation: Any) -> dict[str, Any]:
    meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    return {"name": evaluation.check_name, "passed": evaluation.passed,
            "severity": evaluation.severity.value,
            "allocation_version": meta.get("allocation_version"),
            "failing_count": meta.get("failing_count", 0),
            "failing": meta.get("failing", [])}


def report_checks(outcome: JobOutcome, *, strict: bool) -> int:
    """Print one line per check (and the failing rows); exit 1 if an ERROR check failed."""
    failed = False
    for evaluation in sorted(outcome.checks, key=lambda e: e.check_name):
        info = check_json(evaluation)
        if info["passed"]:
            status = "PASS"
        else:
            status = "FAIL" if info["severity"] == "ERROR" else "WARN"
            failed = failed or info["severity"] == "ERROR"
        print(f"  {status}  {info['name']}"
              + (f" ({info['failing_count']} rows)" if not info["passed"] else ""))
        for row in (info["failing"] or [])[:10] if not info["passed"] else []:
            print("        " + ", ".join(f"{k}={v}" for k, v in row.items() if v is not None))
    return EXIT_FINDINGS if failed else EXIT_CLEAN
