"""One row in this (fresh) process: ``python -m benchmarks.child ROW [--quick] --out FILE``.

Run by :mod:`benchmarks.cli`, so each row's peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from benchmarks.rows import ROWS, runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=list(ROWS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    row = runner(args.row)(args.quick)
    args.out.write_text(json.dumps(row, indent=2, default=str))


if __name__ == "__main__":
    main()
