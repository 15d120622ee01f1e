"""``recon-assets``: the command line, a thin shell over the same Dagster jobs the UI runs.

``--help`` stays fast because Dagster is imported only when a command runs.
"""

from __future__ import annotations

import sys
from typing import Sequence

from recon_assets.errors import EXIT_FAILURE, EXIT_USAGE, ReconError


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, and map failures to SPEC section 5's exit codes."""
    from recon_assets.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except ReconError as exc:
        print(f"recon-assets: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("recon-assets: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # `recon-assets reconcile ... | head`: the reader has gone
        sys.stderr.close()
        return EXIT_FAILURE
