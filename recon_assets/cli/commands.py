"""``sync``, ``fifo`` and ``validate``: run their jobs and say what happened."""

from __future__ import annotations

import argparse
import json
from typing import Any

from recon_assets.cli.refusals import check_writable
from recon_assets.cli.runner import JobOutcome, check_version, log_level, prepare, run_job
from recon_assets.errors import EXIT_CLEAN, EXIT_FINDINGS
from recon_assets.fifo.service import plan_new_version
from recon_assets.fifo.service import resolve_version
from recon_assets.ledger.resources import shared_store
from recon_assets.money import decimal_str


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
    """``FifoConfig`` of the run; the version is not in it: it is the run's partition key."""
    return {"replace": args.replace, "force": args.force, "symbols": args.symbols,
            "skip_bad_rows": args.skip_bad_rows, "assume_zero_fees": args.assume_zero_fees}


def run_fifo(args: argparse.Namespace) -> int:
    """SPEC 3: a new version only when something FIFO reads changed (or ``--force``); the
    refusals and the "unchanged" answer come before any run, so neither records one."""
    check_version(args.version)
    store = shared_store(prepare().database_url)
    plan = plan_new_version(store, symbols=args.symbols, force=args.force)  # refuses typos
    if args.version is not None:
        check_writable(store, args.version, args.replace)
    if plan.unchanged_since is not None and not args.replace:
        _print_unchanged(plan.unchanged_since)
        return EXIT_CLEAN
    version = args.version if args.version is not None else plan.version
    outcome = run_job("fifo_job", {"fifo_allocations": fifo_config(args)},
                      level=log_level(args), partition_key=str(version))
    meta = outcome.metadata("fifo_allocations")
    if not meta:  # another run wrote a version of this ledger meanwhile: nothing to add
        same = plan_new_version(store, symbols=args.symbols).unchanged_since
        if same is None:
            print(f"FIFO version {version}: nothing written (see run {outcome.run_id})")
        else:
            _print_unchanged(same)
        return EXIT_CLEAN
    print(f"FIFO version {meta.get('allocation_version')}: {meta.get('allocation_count')} "
          f"allocations over {meta.get('trade_count')} orders, {meta.get('unmatched_count')} "
          f"unmatched sells, total realized PnL {meta.get('total_pnl_usd_exact')} USD")
    if meta.get("skipped_bad_rows"):
        print(f"  skipped {meta['skipped_bad_rows']} bad ledger rows (listed in "
              "fifo_computation_log.skipped_rows)")
    return report_checks(outcome, strict=False)


def _print_unchanged(info: Any) -> None:
    """SPEC 3's answer when nothing FIFO reads changed: the version that already holds."""
    print(f"FIFO version {info.version}: unchanged since it was computed "
          f"({info.finished_at or info.started_at:%Y-%m-%d %H:%M:%S} UTC, "
          f"{info.status}) - nothing written; --force writes a new version")
    print(f"  {info.allocation_count} allocations over {info.trade_count} orders, "
          f"{info.unmatched_count} unmatched sells, total realized PnL "
          f"{decimal_str(info.total_pnl_usd)} USD")


def run_validate(args: argparse.Namespace) -> int:
    """Validate one version partition: a version that does not exist is refused before a
    run (it would otherwise become a partition of its own)."""
    check_version(args.version)
    info = resolve_version(shared_store(prepare().database_url), args.version)
    outcome = run_job("validate_job", {"validate_fifo_allocations": {"strict": args.strict}},
                      level=log_level(args), partition_key=str(info.version))
    if args.json:
        checks = [check_json(c) for c in outcome.checks]
        failed = any(not c["passed"] and c["severity"] == "ERROR" for c in checks)
        print(json.dumps({"version": info.version, "strict": args.strict,
                          "passed": not failed, "run_id": outcome.run_id, "checks": checks}))
        return EXIT_FINDINGS if failed else EXIT_CLEAN
    return report_checks(outcome, strict=args.strict)


def _plain_metadata(evaluation: Any) -> dict[str, Any]:
    """A check evaluation's metadata as plain values (Dagster wraps each in a MetadataValue)."""
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def check_json(evaluation: Any) -> dict[str, Any]:
    meta = _plain_metadata(evaluation)
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
        if not info["passed"] and not info["failing"]:  # a check about a whole diff: why
            for reason in (_plain_metadata(evaluation).get("reasons") or [])[:10]:
                print(f"        {reason}")
    return EXIT_FINDINGS if failed else EXIT_CLEAN
