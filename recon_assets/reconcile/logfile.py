"""Reconciliation log files (SPEC section 5): one file per run, a ``latest`` link, 84 days kept."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

RETENTION = timedelta(days=84)
LATEST = "reconciliation_latest.log"


def write_reconciliation_log(logs_dir: Path, lines: Sequence[str],
                             now: datetime | None = None) -> Path:
    """Write ``reconciliation_YYYYMMDD_HHMMSS.log``, point the latest link at it, and delete
    logs older than 84 days. Returns the new file's path."""
    now = now or datetime.now(timezone.utc)
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / f"reconciliation_{now:%Y%m%d_%H%M%S}.log"
    suffix = 1
    while path.exists():  # two runs in the same second keep both files
        path = logs_dir / f"reconciliation_{now:%Y%m%d_%H%M%S}_{suffix}.log"
        suffix += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    latest = logs_dir / LATEST
    tmp = logs_dir / f".{LATEST}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(path.name, tmp)
    os.replace(tmp, latest)
    prune_logs(logs_dir, now)
    return path


def prune_logs(logs_dir: Path, now: datetime) -> list[Path]:
    """Delete reconciliation logs whose timestamp in the name is older than the retention."""
    removed = []
    for old in logs_dir.glob("reconciliation_*.log"):
        if old.name == LATEST:
            continue
        try:
            stamp = datetime.strptime(old.stem.split("_", 1)[1][:15], "%Y%m%d_%H%M%S")
        except ValueError:
            continue
        if now - stamp.replace(tzinfo=timezone.utc) > RETENTION:
            old.unlink()
            removed.append(old)
    return removed
