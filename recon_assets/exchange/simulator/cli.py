"""``recon-assets simulator``: the arguments and the serve loop the main CLI delegates to.

The main CLI owns the parser and exit-code mapping; this module only adds the SPEC section 6
options and runs the server until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Callable

from recon_assets.errors import EXIT_CLEAN, BadRowError, ConfigError
from recon_assets.exchange.simulator.book import load_fills_jsonl
from recon_assets.exchange.simulator.inject import INJECTIONS
from recon_assets.exchange.simulator.server import Simulator

#: Where the key lives when ``--key-file`` is not given: the working directory, so a second
#: run finds the same key and clients configured with it keep working. A caller that wants
#: ``$RECON_HOME/simulator/key.json`` instead sets ``args.key_file`` before calling.
DEFAULT_KEY_FILE = Path("simulator-key.json")


def _number(kind: type[int] | type[float], low: float,
            high: float | None = None) -> Callable[[str], float]:
    """An argparse type that reads a number and keeps it within bounds."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}: {text}")
        return value
    return parse


def _injections(text: str) -> tuple[str, ...]:
    """``--inject`` values: a comma-separated subset of :data:`INJECTIONS`."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in INJECTIONS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"want any of {', '.join(INJECTIONS)}, got {text!r}")
    return kinds


def add_simulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``recon-assets simulator`` (SPEC section 6) to ``parser``."""
    parser.add_argument("--port", type=_number(int, 0, 65535), required=True,
                        help="TCP port to listen on (0 picks a free one and prints it)")
    parser.add_argument("--fills", type=Path, required=True, metavar="FILE.jsonl",
                        help="Coinbase Fill objects to serve, one JSON object a line")
    parser.add_argument("--key-file", type=Path, default=None, metavar="KEY.json",
                        help="CDP JSON key clients must sign with; created when absent "
                             f"(default: ./{DEFAULT_KEY_FILE})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--rate-limit", type=_number(int, 1), metavar="N",
                        help="answer 429 beyond N requests in any one second")
    parser.add_argument("--fail-rate", type=_number(float, 0.0, 1.0), default=0.0,
                        metavar="P", help="share of requests answered with a random 5xx")
    parser.add_argument("--latency", type=_number(int, 0), default=0, metavar="MS",
                        help="milliseconds added to every answer")
    parser.add_argument("--retention-days", type=_number(float, 0.0), metavar="D",
                        help="stop serving fills older than D days, like the real exchange")
    parser.add_argument("--truncate-rate", type=_number(float, 0.0, 1.0), default=0.0,
                        metavar="P", help="share of successful answers cut off mid-body: "
                                          "shorter than their Content-Length, cut short, "
                                          "or the connection reset")
    parser.add_argument("--html-errors", action="store_true",
                        help="answer 429 and 5xx with HTML pages, as a proxy in front of the "
                             "exchange does")
    parser.add_argument("--inject", type=_injections, default=(), metavar="KINDS",
                        help="comma-separated fills to add to those loaded, as Coinbase sends "
                             f"them: {', '.join(INJECTIONS)} (REVERSAL entries, "
                             "<BASE>-PERP-INTX fills, nanosecond trade times, fills sequenced "
                             "an hour after the rest that appear only after a first listing)")
    parser.add_argument("--seed", type=int,
                        help="seed for --fail-rate, --truncate-rate and --inject, for "
                             "repeatable runs")


def run_simulator(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then return 0. Must run in the main thread.

    Prints one line with the URL and the key file path (never the key itself); each request
    is logged as method, path and status.
    """
    try:
        fills = load_fills_jsonl(args.fills)
        key_file = args.key_file or DEFAULT_KEY_FILE
        simulator = Simulator(fills, key_file, host=args.host, port=args.port,
                              rate_limit=args.rate_limit, fail_rate=args.fail_rate,
                              latency_ms=args.latency, retention_days=args.retention_days,
                              seed=args.seed, truncate_rate=args.truncate_rate,
                              html_errors=args.html_errors, inject=args.inject)
    except BadRowError as exc:
        raise ConfigError(f"fills file {args.fills}: {exc}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with simulator:
            print(f"Coinbase simulator serving {len(fills)} fills at {simulator.url} "
                  f"(key file: {Path(key_file).resolve()})", flush=True)
            stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_CLEAN
