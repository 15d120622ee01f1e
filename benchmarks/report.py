"""The results file and the table printed for it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.checks import describe

REPO = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    """Where and on what code the numbers were measured."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "memory": memory, "platform": platform.platform(),
            "python": platform.python_version(), "commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no"))}


def document(rows: list[dict[str, Any]], quick: bool) -> dict[str, Any]:
    return {"machine": machine(), "quick": quick, "rows": rows}


def write(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:,.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x" if value < 1 else f"{value:,.1f}x"


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per row, then each row's targets (failed ones marked)."""
    lines = ["| row | project s | baseline s | ratio | peak MiB | targets met |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['name']} | - | - | - | - | ERROR: {row['error']} |")
            continue
        checks = "; ".join(("" if c["met"] else "**NOT MET** ") + describe(c)
                           for c in row["checks"])
        lines.append(f"| {row['title']} | {_seconds(row['seconds'])} | "
                     f"{_seconds(row['baseline_seconds'])} | {_ratio(row['ratio'])} | "
                     f"{row['peak_rss_mib']:,.0f} | {'yes' if row['met'] else 'NO'}: "
                     f"{checks} |")
    return "\n".join(lines)
