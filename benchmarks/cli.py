"""``python -m benchmarks [--quick] [--json PATH] [--only ROW ...]``: every row, a table, a file.

Each row runs in a fresh ``python -m benchmarks.child`` subprocess, one after the other (so
rows never compete for the two cores, and each peak RSS is that row's). A row that crashes is
reported with its error and makes the exit status 1; targets not met do not (they are
findings, shown in the table and the file).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import report
from benchmarks.rows import ROWS

DEFAULT_JSON = report.REPO / "benchmarks" / "results" / "latest.json"


def run_row(name: str, quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        args = [sys.executable, "-m", "benchmarks.child", name, "--out", str(out)]
        proc = subprocess.run(args + (["--quick"] if quick else []), cwd=report.REPO,
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            return {"name": name, "error": tail, "stderr": proc.stderr[-4000:]}
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(
        "\n")[0].split(": ", 1)[1])
    parser.add_argument("--quick", action="store_true",
                        help="every row at about 1%% of its size, in seconds (smoke test)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                        help=f"where to write the results (default: {DEFAULT_JSON})")
    parser.add_argument("--only", action="append", choices=list(ROWS), metavar="ROW",
                        help=f"run only this row (repeatable): {', '.join(ROWS)}")
    args = parser.parse_args(argv)
    rows = []
    for name in args.only or list(ROWS):
        started = time.perf_counter()
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr,
              flush=True)
        rows.append(run_row(name, args.quick))
        print(f"  {name}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    doc = report.document(rows, args.quick)
    report.write(doc, args.json)
    print(report.table(rows))
    print(f"\nwritten to {args.json}", file=sys.stderr)
    return 1 if any("error" in row for row in rows) else 0
