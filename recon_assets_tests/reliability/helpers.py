"""Subprocess entry points for the reliability tests: ``python -m ... COMMAND ARG``.

The crash commands (``ARG`` is the ledger URL) do a real write with the project's own
functions, inside the same ledger lock and transaction the CLI uses, print ``READY`` once the
rows are written but not committed, and then wait to be killed (the test sends SIGKILL; they
never get to commit):

- ``backfill``: ``backfill.apply`` of every approved request under ``locked("backfill")``.
- ``version``: ``claim_version`` + ``write_version`` of a full FIFO version under
  ``locked("fifo")``.

``session PLAN.json`` runs a list of steps in one process, as an operator's session would:
``{"argv": [...], "env": {...}}`` runs ``recon-assets ARGV`` (``main``) with those variables
set, printing ``EXIT <code> <argv>``; ``{"sensor": NAME}`` evaluates one tick of that sensor of
``recon_assets.definitions:defs`` on the CLI's Dagster instance, as the daemon would (the cursor
carries over to the next tick of the same sensor). One
process keeps the test fast (Dagster is imported once) while stdout and stderr stay real.
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
                               allocations=[allocations], allocation_time=now, log={
                                   "status": versions.STATUS_COMPUTED, "started_at": now,
                                   "finished_at": now, "duration_ms": 0,
                                   "trade_count": len(trades),
                                   "allocation_count": len(allocations),
                                   "unmatched_count": 0, "symbols": [],
                                   "total_pnl_usd": None, "ledger_fingerprint": None,
                                   "skipped_rows": []})
        _ready(f"version {number} with {len(allocations)} rows")


def session(plan_file: str) -> None:
    import json
    import os

    from recon_assets.cli import main

    cursors: dict[str, str | None] = {}
    for step in json.loads(open(plan_file, encoding="utf-8").read()):
        if "sensor" in step:
            import dagster as dg

            from recon_assets.cli.runner import prepare
            from recon_assets.definitions import defs

            prepare()  # the CLI's Dagster home, as the commands use it
            name = step["sensor"]
            with dg.DagsterInstance.get() as instance:
                result = defs.resolve_sensor_def(name).evaluate_tick(dg.build_sensor_context(
                    instance=instance, definitions=defs, cursor=cursors.get(name)))
            cursors[name] = result.cursor
            print(f"SENSOR {name}: {result.skip_message}", flush=True)
            continue
        os.environ.update(step.get("env", {}))
        code = main(step["argv"])
        print(f"EXIT {code} {' '.join(step['argv'])}", flush=True)


if __name__ == "__main__":
    command, arg = sys.argv[1:3]
    if command == "session":
        session(arg)
    else:
        {"backfill": apply_backfill_then_wait, "version": write_version_then_wait}[command](
            LedgerStore(arg))
