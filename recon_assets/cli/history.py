"""``diff-versions``, ``export`` and ``inventory``: looking back at FIFO versions.

``diff-versions`` of a version and its predecessor materializes that version's
``fifo_version_diff`` partition through ``version_diff_job`` (so the comparison and its check
show in the UI like every other run); any other pair is an audit query computed here, with no
run. ``export`` and
``inventory`` are read-only reports on one stored version: like ``backfill list`` they read
the ledger directly and change no asset. Dagster is imported only by ``diff-versions``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from recon_assets.errors import EXIT_CLEAN, ConfigError

AddCommand = Callable[..., argparse.ArgumentParser]


def add_history_commands(add: AddCommand) -> None:
    """Define the three commands with parser.py's ``add(name, help, (module, fn))`` helper."""
    p = add("diff-versions", "Compare two FIFO versions: PnL per symbol, the sells whose "
                             "allocations changed, and the orders that changed them. A version "
                             "and the one before it (the default) materialize that version's "
                             "fifo_version_diff partition; any other pair is an audit query: "
                             "printed only, no run, nothing the UI shows, no alert.",
            ("recon_assets.cli.history", "run_diff_versions"))
    p.add_argument("old", type=int, nargs="?", metavar="A",
                   help="the older version (default: the one before B)")
    p.add_argument("new", type=int, nargs="?", metavar="B", help="the newer version "
                                                                 "(default: the latest)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="only warnings and errors from the Dagster run on stderr")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="every Dagster event on stderr (debug level)")

    p = add("export", "Write a version's realized gains for tax tools (Form 8949 columns), "
                      "unmatched sells to a separate file, and print totals per year and "
                      "symbol.", ("recon_assets.cli.history", "run_export"))
    p.add_argument("--version", type=int, required=True, help="the FIFO version to export")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="file format of the gains file (default: csv)")
    p.add_argument("--year", type=int, help="only sales in this calendar year (UTC)")
    _symbols(p)
    p.add_argument("--output", metavar="PATH", help="gains file (default: "
                   "capital_gains_vN[_YEAR].FORMAT); unmatched sells go to "
                   "PATH-without-suffix.unmatched.csv")

    p = add("inventory", "Open lots per symbol as of a time: remaining size and cost basis "
                         "of every buy a FIFO version has not fully allocated.",
            ("recon_assets.cli.history", "run_inventory"))
    p.add_argument("--at", metavar="TIME",
                   help="ISO time, naive = UTC (default: after the last order)")
    p.add_argument("--version", type=int, help="the FIFO version (default: the latest)")
    _symbols(p)
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")


def _symbols(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbol", dest="symbols", action="append", default=[], metavar="S",
                   help="limit to this product, e.g. BTC-USD (repeatable)")


def run_diff_versions(args: argparse.Namespace) -> int:
    """The default pair (B and the version before it) materializes ``fifo_version_diff``
    partition B, as the UI and the alerts know it; any other pair is an audit query answered
    here with no run, so it never replaces what partition B shows nor alerts anyone."""
    from recon_assets.cli.runner import check_version, log_level, prepare, run_job
    from recon_assets.fifo.history_assets import pick_versions, unexplained
    from recon_assets.fifo.service import diff_stored
    from recon_assets.fifo.version_diff import to_json, to_markdown
    from recon_assets.ledger import versions
    from recon_assets.ledger.resources import shared_store

    check_version(args.old, "A")
    check_version(args.new, "B")
    store = shared_store(prepare().database_url)
    with store.connect() as conn:
        logged = [info.version for info in versions.list_versions(conn)]
        old, new = pick_versions(logged, args.old, args.new)
        default_old, _ = pick_versions(logged, None, new)
        if old != default_old:  # an audit query: never a run
            diff = diff_stored(conn, old, new)
            return _print_diff(args, to_json(diff), to_markdown(diff), unexplained(diff))
    outcome = run_job("version_diff_job", level="WARNING" if args.json else log_level(args),
                      partition_key=str(new))
    meta = outcome.metadata("fifo_version_diff")
    reasons = [r for check in outcome.checks if not check.passed
               for r in getattr(check.metadata.get("reasons"), "value", None) or []]
    return _print_diff(args, meta["diff"], meta["summary"], reasons)


def _print_diff(args: argparse.Namespace, diff: dict[str, Any], summary: str,
                reasons: list[str]) -> int:
    """A diff as JSON or as its Markdown summary, with a WARN line when it needs review."""
    from recon_assets.fifo.history_assets import EXPLAINED_CHECK

    if args.json:
        print(json.dumps(diff))
    else:
        print(summary)
        if reasons:
            print(f"WARN  {EXPLAINED_CHECK}: " + "; ".join(reasons))
    return EXIT_CLEAN


def default_output(version: int, year: int | None, fmt: str) -> str:
    return f"capital_gains_v{version}{f'_{year}' if year else ''}.{fmt}"


def unmatched_path(output: str) -> str:
    """``gains.csv`` -> ``gains.unmatched.csv`` (always CSV: it is for review, not tax tools)."""
    root, ext = os.path.splitext(output)
    return f"{root if ext else output}.unmatched.csv"


def check_year(year: int | None) -> None:
    """``--year`` must be a calendar year whose sales can be selected (its 1 January and the
    next year's both exist)."""
    if year is not None and not 1 <= year <= 9998:
        raise ConfigError(f"--year must be a year from 1 to 9998, got {year}")


def run_export(args: argparse.Namespace) -> int:
    from recon_assets.cli.runner import check_version, prepare
    from recon_assets.fifo import export
    from recon_assets.fifo.service import resolve_version
    from recon_assets.ledger.resources import shared_store

    check_version(args.version)
    check_year(args.year)
    store = shared_store(prepare().database_url)
    info = resolve_version(store, args.version)
    output = args.output or default_output(info.version, args.year, args.format)
    review = unmatched_path(output)
    with store.connect() as conn:
        totals = export.write_export(export.iter_allocation_chunks(
            conn, info.version, symbols=args.symbols, year=args.year), output, args.format,
            review)
    if info.status != "validated":
        print(f"recon-assets: warning: version {info.version} is {info.status}, not "
              "validated", file=sys.stderr)
    print(f"FIFO version {info.version} -> {output} ({args.format}); unmatched sells -> "
          f"{review}")
    print("\n".join(totals.lines()))
    if any(t.unmatched for t in totals.by_key.values()):
        print(f"recon-assets: warning: unmatched sells have no cost basis and are not in "
              f"{output}: see {review}", file=sys.stderr)
    return EXIT_CLEAN


def _parse_time(text: str | None) -> Any:
    """``--at`` as a UTC Timestamp (naive = UTC); a usage error when unreadable."""
    import pandas as pd

    if not text:
        return None
    try:
        at = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"--at: not a time: {text!r}") from None
    return at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")


def run_inventory(args: argparse.Namespace) -> int:
    from recon_assets.cli.runner import check_version, prepare
    from recon_assets.fifo.inventory import inventory, inventory_totals
    from recon_assets.fifo.service import load_version, resolve_version
    from recon_assets.ledger.resources import shared_store
    from recon_assets.metadata import jsonable
    from recon_assets.money import decimal_str

    check_version(args.version)
    at = _parse_time(args.at)
    store = shared_store(prepare().database_url)
    info = resolve_version(store, args.version)
    allocations, trades = load_version(store, info)
    if args.symbols:
        trades = trades[trades["symbol"].isin(args.symbols)]
    if info.ledger_fingerprint and str(store.fingerprint()) != info.ledger_fingerprint:
        print(f"recon-assets: warning: the ledger changed since version {info.version} was "
              "computed; orders added since show as unallocated", file=sys.stderr)
    lots = inventory(trades, allocations, at)
    totals = inventory_totals(lots)
    if args.json:
        print(json.dumps({"version": info.version, "at": at.isoformat() if at else None,
                          "symbols": jsonable(totals.to_dict("records")),
                          "lots": jsonable(lots.to_dict("records"))}))
        return EXIT_CLEAN
    when = f"at {at.isoformat()}" if at is not None else "after the last order"
    print(f"Inventory of FIFO version {info.version} {when}: {len(lots)} open lots")
    for row in totals.itertuples(index=False):
        print(f"  {row.symbol}: {row.lots} lots, {decimal_str(row.remaining_size)} held, "
              f"cost basis {decimal_str(row.remaining_cost_basis_usd)} USD")
    for row in lots.itertuples(index=False):
        print(f"    {row.symbol} {row.buy_order_id} {row.buy_time.isoformat()} "
              f"{decimal_str(row.remaining_size)} of {decimal_str(row.size)} @ "
              f"{decimal_str(row.price)} -> {decimal_str(row.remaining_cost_basis_usd)} USD")
    return EXIT_CLEAN
