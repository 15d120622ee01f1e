"""The argument parser: every command of SPEC section 5, each pointing at its handler."""

from __future__ import annotations

import argparse
from typing import Any, Callable


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A handler imported only when its command runs (keeps ``--help`` free of Dagster)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return run


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="only warnings and errors from the Dagster run on stderr")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="every Dagster event on stderr (debug level)")


def _symbols(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbol", dest="symbols", action="append", default=[], metavar="S",
                   help="limit to this product, e.g. BTC-USD (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon-assets",
        description="Reconcile a Coinbase trading bot's ledger with the exchange and keep FIFO "
                    "cost basis honest. Each command materializes the same Dagster assets as "
                    "the UI (`recon-assets ui`), in-process, recorded in "
                    "$DAGSTER_HOME (default $RECON_HOME/dagster).",
        epilog="Exit codes: 0 clean, 1 findings (missing orders, failed validation), "
               "2 usage or configuration error, 3 exchange or database failure.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def add(name: str, help_text: str, handler: tuple[str, str], **kw: Any
            ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kw)
        p.set_defaults(handler=_lazy(*handler))
        return p

    p = add("demo", "Seed the embedded ledger and simulator with a bot history that has gaps, "
                    "run the whole loop (sync, FIFO, tiers 1-3, backfill, new version, "
                    "validation) and print a summary.", ("recon_assets.cli.demo", "run_demo"))
    _common(p)

    p = add("sync", "Pull new exchange fills into the fills archive and re-read the ledger.",
            ("recon_assets.cli.commands", "run_sync"))
    _common(p)

    p = add("fifo", "Compute FIFO allocations as a new version (max + 1) and validate it, "
                    "when something FIFO reads changed since the latest version of the same "
                    "scope (otherwise say which version is current and write nothing).",
            ("recon_assets.cli.commands", "run_fifo"))
    p.add_argument("--version", type=int, help="write this version number instead of max + 1")
    p.add_argument("--force", action="store_true",
                   help="write a new version even when nothing changed since the latest")
    p.add_argument("--replace", action="store_true",
                   help="allow --version to overwrite an existing, not yet validated version")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="leave unusable ledger rows out (listed in the version's log) "
                        "instead of refusing to compute")
    p.add_argument("--assume-zero-fees", action="store_true",
                   help="compute over a trade_records without a total_fees_usd column, every "
                        "fee 0 (without this flag such a ledger is refused, exit 2)")
    _symbols(p)
    _common(p)

    p = add("validate", "Run the validation checks on a FIFO version.",
            ("recon_assets.cli.commands", "run_validate"))
    p.add_argument("--version", type=int, help="the version to validate (default: latest)")
    p.add_argument("--strict", action="store_true",
                   help="unmatched sells fail validation (ERROR instead of WARN)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    _common(p)

    p = add("reconcile", "Compare the exchange with the ledger and report missing orders.",
            ("recon_assets.cli.reconcile", "run_reconcile"))
    p.add_argument("--tier", type=int, choices=(1, 2, 3), required=True,
                   help="1: behind unmatched sells (fast); 2: daily counts (weekly); "
                        "3: full audit")
    p.add_argument("--version", type=int, help="FIFO version for tier 1 (default: latest)")
    p.add_argument("--auto-backfill", action="store_true",
                   help="approve and apply the backfill of every missing order at once")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    _symbols(p)
    _common(p)

    p = add("backfill", "Review and apply backfill requests (pending -> approved/rejected -> "
                        "applied).", ("recon_assets.cli.reconcile", "run_backfill"))
    p.add_argument("action", choices=("list", "approve", "reject", "apply"))
    p.add_argument("ids", nargs="*", type=int, metavar="ID",
                   help="request ids (apply without ids applies every approved request)")
    p.add_argument("--status", choices=("pending", "approved", "rejected", "applied"),
                   help="with list: only this status")
    p.add_argument("--by", help="who decides (default: $USER)")
    p.add_argument("--json", action="store_true", help="with list: print one JSON object")

    from recon_assets.cli.history import add_history_commands

    add_history_commands(add)

    p = add("ui", "Start the Dagster UI (dagster dev) on the CLI's instance, so it shows the "
                  "CLI's runs.", ("recon_assets.cli.ui", "run_ui"))
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=3000, help="port (default: %(default)s)")

    p = add("simulator", "Serve a Coinbase Advanced Trade simulator over HTTP (SPEC section 6).",
            ("recon_assets.exchange.simulator.cli", "run_simulator"))
    from recon_assets.exchange.simulator.cli import add_simulator_arguments

    add_simulator_arguments(p)
    return parser
