"""The per-symbol work on two Celery workers through RabbitMQ gives what an in-process run
gives, row for row; a worker killed mid-run leaves no partial version and, after the next
run, no staging rows.

Ledger: PostgreSQL, 20 symbols (``benchmarks.history.bot_history``, with missing buys so FIFO
has unmatched sells and tier 3 has findings); exchange: the simulator over HTTP. The Dagster
instance: a fresh PostgreSQL database shared by the launcher and both workers.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from benchmarks.history import bot_history
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.conftest import run_version_partition, seed_trade_records
from recon_assets_tests.scaleout.conftest import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

ALLOCATION_COLUMNS = (
    "sell_order_id, buy_order_id, symbol, allocated_size, buy_price, sell_price, "
    "buy_fees_per_unit, sell_fees_per_unit, cost_basis_usd, proceeds_usd, net_proceeds_usd, "
    "pnl_usd, buy_time, sell_time, notes")
LOG_COLUMNS = ("trade_count, allocation_count, unmatched_count, symbols, total_pnl_usd, "
               "ledger_fingerprint, skipped_rows")
TIER3 = {"missing_orders": {"config": {"tier": "3"}}}


@pytest.fixture
def ledger(pg_url, tmp_path, monkeypatch):
    """A 20-symbol PostgreSQL ledger with gaps, the simulator serving the full history, and
    the settings pointing at both (for the in-process runs; the nodes get them in .env)."""
    from recon_assets.exchange.simulator import Simulator

    history = bot_history(n_orders=500, n_symbols=20, days=60, seed=16, missing_buys=5)
    seed_trade_records(pg_url, history.ledger.to_dict("records"))
    key_file = tmp_path / "sim-key.json"
    with Simulator(history.fills, key_file) as simulator:
        settings = {"DATABASE_URL": pg_url, "RECON_EXCHANGE_URL": simulator.url,
                    "COINBASE_KEY_FILE": str(key_file)}
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        yield settings


def rows(url: str, sql: str) -> list[tuple]:
    store = LedgerStore(url)
    try:
        with store.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        store.dispose()


def version_rows(url: str, version: int) -> list[tuple]:
    return rows(url, f"SELECT {ALLOCATION_COLUMNS} FROM fifo_allocations "
                     f"WHERE allocation_version = {version} ORDER BY id")


def staging_count(url: str) -> int:
    return sum(rows(url, "SELECT (SELECT count(*) FROM fifo_staging) "
                         "+ (SELECT count(*) FROM fifo_staging_runs)")[0])


def in_process(job: str, ops: dict | None = None, version: int | None = None) -> None:
    """``job`` in this process (on FIFO version ``version``'s partition when given)."""
    from recon_assets.definitions import defs

    config = {"run_config": {"ops": ops}} if ops else {}
    with dg.instance_for_test() as instance:
        resolved = defs.resolve_job_def(job)
        result = (run_version_partition(resolved, version, instance, **config)
                  if version is not None else resolved.execute_in_process(
                      instance=instance, **config))
    assert result.success


def celery_steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key -> the Celery worker that executed it, from the run's event log."""
    steps = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        worker = event.engine_event_data.metadata.get("Celery worker")
        if worker is not None:
            steps[event.step_key] = worker.value
    return steps


def host_local_files(cluster: Cluster) -> list[Path]:
    """Files any node keeps under ``$DAGSTER_HOME/storage`` other than compute logs: step
    outputs there would be unreadable from another host."""
    found = []
    for node in [cluster.launcher, *cluster.workers]:
        storage = node.home / "storage"
        found += [p for p in storage.rglob("*") if p.is_file() and "compute_logs" not in p.parts]
    return found


def test_fifo_and_tier3_on_two_workers_match_in_process(ledger, celery_cluster, monkeypatch):
    url = ledger["DATABASE_URL"]
    in_process("fifo_job", version=1)
    in_process("reconcile_job", TIER3)                       # reconciliation run 1
    cluster = celery_cluster(ledger)

    fifo = cluster.execute("fifo_job", {"fifo_allocations": {"config": {"force": True}}},
                           partition="2")
    assert fifo.returncode == 0, fifo.stdout[-3000:] + fifo.stderr[-3000:]
    audit = cluster.execute("reconcile_job", TIER3)          # reconciliation run 2
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]

    baseline, fanned = version_rows(url, 1), version_rows(url, 2)
    assert len(baseline) > 300 and fanned == baseline
    logged = rows(url, f"SELECT {LOG_COLUMNS} FROM fifo_computation_log ORDER BY 1")
    assert logged[0] == logged[1]
    assert len(logged[0][3]) == 20 and logged[0][2] >= 5    # 20 symbols, unmatched sells
    findings = rows(url, "SELECT summary FROM reconciliation_runs ORDER BY id")
    first, second = ({k: v for k, v in f[0].items() if k != "version"} for f in findings)
    assert len(first["missing_orders"]) == 5 and second == first
    assert staging_count(url) == 0

    monkeypatch.setenv("DAGSTER_HOME", str(cluster.launcher.home))
    monkeypatch.setenv("DAGSTER_PG_URL", cluster.launcher.env["DAGSTER_PG_URL"])
    with dg.DagsterInstance.get() as instance:
        runs = {r.job_name: r for r in instance.get_runs()}
        assert {r.status for r in runs.values()} == {dg.DagsterRunStatus.SUCCESS}
        steps = celery_steps(instance, runs["fifo_job"].run_id)
        audit_steps = celery_steps(instance, runs["reconcile_job"].run_id)
    symbol_steps = {k: w for k, w in steps.items() if "fifo_allocate_symbol[" in k}
    assert len(symbol_steps) == 20
    assert set(symbol_steps.values()) == {n.worker_name for n in cluster.workers}
    assert "missing_orders" in audit_steps
    assert host_local_files(cluster) == []


def wait_until(what: str, probe, deadline_s: float = 90):
    end = time.monotonic() + deadline_s
    while (value := probe()) is None:
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def test_worker_killed_mid_run_leaves_no_partial_version_nor_staging(ledger, celery_cluster,
                                                                     monkeypatch):
    url = ledger["DATABASE_URL"]
    cluster = celery_cluster(ledger)
    doomed, survivor = cluster.workers
    launcher = cluster.execute("fifo_job", wait=False, partition="1")
    try:
        staged = wait_until("the first per-symbol results", lambda: (
            n if 3 <= (n := rows(url, "SELECT count(*) FROM fifo_staging")[0][0]) else None))
        assert staged < 20, "the run finished before the worker could be killed"
        cluster.kill_worker(doomed)       # SIGKILL in the middle of its step
        time.sleep(2)
    finally:                              # the run's own process dies too (a crashed host)
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    monkeypatch.setenv("DAGSTER_HOME", str(cluster.launcher.home))
    monkeypatch.setenv("DAGSTER_PG_URL", cluster.launcher.env["DAGSTER_PG_URL"])
    with dg.DagsterInstance.get() as instance:
        (killed,) = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED   # nobody is left to say otherwise
        # What the UI's "Terminate" (forced) or run monitoring does with a run whose process
        # is gone: the instance now knows it ended.
        instance.report_run_canceled(killed, message="run process killed")
    assert rows(url, "SELECT count(*) FROM fifo_computation_log")[0][0] == 0
    assert rows(url, "SELECT count(*) FROM fifo_allocations")[0][0] == 0
    assert staging_count(url) > 0                # what the killed run left behind

    again = cluster.execute("fifo_job", partition="1")  # the survivor alone
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert staging_count(url) == 0
    assert rows(url, "SELECT allocation_version FROM fifo_computation_log") == [(1,)]
    in_process("fifo_job", {"fifo_allocations": {"config": {"force": True}}}, version=2)
    assert version_rows(url, 1) == version_rows(url, 2)
    assert survivor.proc.poll() is None
