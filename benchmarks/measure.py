"""Wall time and peak resident memory of one phase of a benchmark row, in this process.

Each row runs in its own subprocess, so the peak is that row's alone. Within the row, the peak
is reset (Linux ``/proc/self/clear_refs``) at the start of each phase, so the project's phase
and the baseline's phase each get their own peak; where the reset is not available the value
is the process's peak so far (``getrusage``), which can only over-state it.
"""

from __future__ import annotations

import contextlib
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class Phase:
    """Filled in when the ``with measure()`` block ends."""

    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    peak_is_phase_only: bool = False


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")  # "5" resets the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident set size (VmHWM, or ru_maxrss) of this process, MiB."""
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@contextlib.contextmanager
def measure() -> Iterator[Phase]:
    """Time the block and record its peak RSS (the memory already resident counts too)."""
    phase = Phase(peak_is_phase_only=_reset_peak())
    started = time.perf_counter()
    try:
        yield phase
    finally:
        phase.seconds = time.perf_counter() - started
        phase.peak_rss_mib = peak_rss_mib()
