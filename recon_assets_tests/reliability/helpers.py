"""Subprocess entry points for the crash tests: ``python -m ... COMMAND LEDGER_URL``.

Each command does a real write with the project's own functions, inside the same ledger lock
and transaction the CLI uses, prints ``READY`` once the rows are written but not committed, and
then waits to be killed (the test sends SIGKILL; it never gets to commit).

- ``backfill``: ``backfill.apply`` of every approved request under ``locked("backfill")``.
- ``version``: ``claim_version`` + ``write_version`` of a full FIFO version under
  ``locked("fifo")``.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import datetime, timezone

from recon_assets.fifo import allocate
from recon_assets.ledger import backfill, versions
from recon_assets.ledger.store import LedgerStore

WAIT_SECONDS = 300  # the test kills us long before; this only ends an orphan


def _ready(what: str) -> None:
    print(f"READY {what}", flush=True)
    time.sleep(WAIT_SECONDS)
    sys.exit("not killed")


def apply_backfill_then_wait(store: LedgerStore) -> None:
    with store.locked("backfill") as conn:
        result = backfill.apply(conn, None, "doomed-process")
        _ready(f"inserted {len(result.inserted_order_ids)} orders")


def write_version_then_wait(store: LedgerStore) -> None:
    trades = store.read_trades().raise_if_bad()
    allocations = allocate(trades)
    with store.locked("fifo") as conn:
        number = versions.claim_version(conn, None, False)
        now = datetime.now(timezone.utc)
        versions.write_version(conn, version=number, batch_id=uuid.uuid4().hex,
                               allocations=allocations, allocation_time=now, log={
                                   "status": versions.STATUS_COMPUTED, "started_at": now,
                                   "finished_at": now, "duration_ms": 0,
                                   "trade_count": len(trades),
                                   "allocation_count": len(allocations),
                                   "unmatched_count": 0, "symbols": [],
                                   "total_pnl_usd": None, "ledger_fingerprint": None,
                                   "skipped_rows": []})
        _ready(f"version {number} with {len(allocations)} rows")


COMMANDS = {"backfill": apply_backfill_then_wait, "version": write_version_then_wait}

if __name__ == "__main__":
    command, url = sys.argv[1:3]
    COMMANDS[command](LedgerStore(url))
