"""The webserver and the daemon as the systemd units run them, on ``deploy/dagster.yaml``:
the UI's GraphQL API shows the SPEC section 7 definitions, and the daemon's run queue runs
queued jobs one at a time."""

from __future__ import annotations

import pytest

from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.production.conftest import pg_rows
from recon_assets_tests.production.services import GraphQL, free_port, run_cli, service, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

DEFINITIONS = """{
  assetNodes { assetKey { path }
               assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    name location { name }
    schedules { name cronSchedule scheduleState { status } }
    sensors { name sensorState { status } } } } }
  instance { runQueuingSupported runQueueConfig { maxConcurrentRuns } }
}"""

LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def _loaded(graphql: GraphQL):
    entries = graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
    if entries and all(e["loadStatus"] == "LOADED" for e in entries):
        return entries
    return None


def test_webserver_shows_definitions_and_daemon_runs_the_queue_one_at_a_time(
        demo_exchange, production_home, monkeypatch, sqlite_url, dagster_pg_url, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(production_home))  # over demo_exchange's home
    store = LedgerStore(sqlite_url)  # an empty ledger: the ledger sensor has nothing to do
    store.ensure_schema()
    store.dispose()
    monkeypatch.setenv("DATABASE_URL", sqlite_url)

    port = free_port()
    graphql = GraphQL(port)
    web_log = tmp_path / "webserver.log"
    with service(["dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1",
                  "-p", str(port)], web_log) as web:
        wait_for("webserver /server_info", graphql.up, web, web_log)
        [entry] = wait_for("code location loaded", lambda: _loaded(graphql), web, web_log)
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry

        data = graphql(DEFINITIONS)
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
        assert {"exchange_fills", "database_trades", "fifo_allocations", "unmatched_sells",
                "missing_orders"} <= set(nodes)
        fifo_checks = {c["name"]: c["blocking"]
                       for c in nodes["fifo_allocations"]["assetChecksOrError"]["checks"]}
        assert fifo_checks["check_fifo_allocations_no_buy_over_allocated"] is True
        assert fifo_checks["check_fifo_allocations_no_unmatched_sells"] is False
        [repo] = data["repositoriesOrError"]["nodes"]
        schedules = {s["name"]: s for s in repo["schedules"]}
        weekly = schedules["weekly_reconciliation_schedule"]
        assert (weekly["cronSchedule"], weekly["scheduleState"]["status"]) == (
            "15 9 * * 0", "RUNNING")
        sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
        assert sensors["ledger_change_sensor"] == "RUNNING"
        assert sensors["check_failure_alert_sensor"] == "RUNNING"
        assert data["instance"] == {"runQueuingSupported": True,
                                    "runQueueConfig": {"maxConcurrentRuns": 1}}

        # Two reconciliation-side runs from the UI wait in the queue while no daemon runs.
        selector = {"repositoryLocationName": repo["location"]["name"],
                    "repositoryName": repo["name"], "jobName": "sync_job"}
        for _ in range(2):
            launched = graphql(LAUNCH, params={"selector": selector, "runConfigData": {}})
            assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
            assert launched["launchRun"]["run"]["status"] == "QUEUED"
        not_running = run_cli(["dagster-daemon", "liveness-check"])
        assert (not_running.returncode, not_running.stdout.strip()) == (
            1, "Daemon(s) not running")

        daemon_log = tmp_path / "daemon.log"
        with service(["dagster-daemon", "run", "-w", "workspace.yaml"], daemon_log) as daemon:
            def finished():
                rows = pg_rows(dagster_pg_url, "SELECT run_id, pipeline_name, status, "
                               "start_time, end_time FROM runs ORDER BY start_time")
                return rows if all(r.status in TERMINAL for r in rows) else None

            runs = wait_for("queued runs finished", finished, daemon, daemon_log, 180)
            wait_for("dagster-daemon liveness-check",
                     lambda: run_cli(["dagster-daemon", "liveness-check"]).returncode == 0
                     or None, daemon, daemon_log)

    assert [(r.pipeline_name, r.status) for r in runs] == [("sync_job", "SUCCESS")] * 2, \
        daemon_log.read_text()[-4000:]
    first, second = runs
    assert second.start_time >= first.end_time  # the queue never ran them side by side
    for run in runs:  # each step's stdout/stderr, where the README (Troubleshooting) says
        assert list((production_home / "storage" / run.run_id / "compute_logs").glob("*.err"))


RUNS = """{ runsOrError { ... on Runs { results { runId jobName status } } } }"""


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_every_dagster_pg_url_form_serves_the_cli_the_webserver_and_the_daemon(
        scheme, production_home, dagster_pg_url, monkeypatch, tmp_path):
    """README.md, section Production: ``DAGSTER_PG_URL`` as users write it. The CLI records a
    run (its event log uses LISTEN/NOTIFY), the UI's GraphQL lists it, the daemon runs."""
    url = dagster_pg_url.replace("postgresql+psycopg2://", f"{scheme}://", 1)
    monkeypatch.setenv("DAGSTER_PG_URL", url)

    synced = run_cli(["recon-assets", "sync", "-q"])  # the embedded ledger and simulator
    assert synced.returncode == 0, synced.stdout + synced.stderr
    [run] = pg_rows(dagster_pg_url, "SELECT run_id, pipeline_name, status FROM runs")
    assert (run.pipeline_name, run.status) == ("sync_job", "SUCCESS")

    port = free_port()
    graphql = GraphQL(port)
    web_log, daemon_log = tmp_path / "webserver.log", tmp_path / "daemon.log"
    with service(["dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1",
                  "-p", str(port)], web_log) as web, \
            service(["dagster-daemon", "run", "-w", "workspace.yaml"], daemon_log) as daemon:
        wait_for("webserver /server_info", graphql.up, web, web_log)
        runs = graphql(RUNS)["runsOrError"]["results"]
        assert [(r["runId"], r["jobName"], r["status"]) for r in runs] == [
            (run.run_id, "sync_job", "SUCCESS")]
        wait_for("dagster-daemon liveness-check",
                 lambda: run_cli(["dagster-daemon", "liveness-check"]).returncode == 0
                 or None, daemon, daemon_log)
