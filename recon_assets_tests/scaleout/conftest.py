"""Two real Celery workers on the local RabbitMQ, sharing nothing but the databases.

Each worker gets its own working directory (its own ``.env``) and its own ``DAGSTER_HOME``
(the same instance yaml, pointing at a fresh PostgreSQL database, and its own local storage
folder), and listens on a queue made for this test only, so stray workers of other test runs
cannot take its tasks. Runs are launched by ``dagster job execute`` from a third directory,
as README "Scaling out" tells a user to. Workers are stopped at the end whatever happens: the
finalizer kills their process groups.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from recon_assets_tests.production.conftest import dagster_pg_url  # noqa: F401 - fixture
from recon_assets_tests.production.services import BIN, SETTINGS_VARIABLES

BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"

INSTANCE_YAML = """\
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
telemetry:
  enabled: false
"""


def _broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
        return True
    except OSError:
        return False


@dataclass
class Node:
    """One machine's worth of local state: a working directory with ``.env`` and a home."""

    name: str
    cwd: Path
    home: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def worker_name(self) -> str:
        return f"{self.name}@{socket.gethostname()}"


@dataclass
class Cluster:
    """The launcher node, two worker nodes and the queue they share."""

    queue: str
    launcher: Node
    workers: list[Node] = field(default_factory=list)

    def run_config(self, ops: dict | None = None) -> dict:
        """Celery execution on this test's queue (the broker comes from RECON_CELERY_BROKER
        in the launcher's .env)."""
        config: dict = {"execution": {"config": {"celery": {
            "config_source": {"task_default_queue": self.queue}}}}}
        if ops:
            config["ops"] = ops
        return config

    def execute(self, job: str, ops: dict | None = None, *, wait: bool = True,
                partition: str | None = None
                ) -> subprocess.Popen | subprocess.CompletedProcess:
        """``dagster job execute`` of one job, from the launcher's directory; ``partition``
        (a FIFO version) is added to the launcher's instance and run by its tag."""
        path = self.launcher.cwd / f"run-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(self.run_config(ops)), encoding="utf-8")
        args = [str(BIN / "dagster"), "job", "execute", "-m", "recon_assets.definitions",
                "-j", job, "-c", str(path)]
        if partition is not None:
            subprocess.run([str(BIN / "python"), "-c",
                            "import sys, dagster as dg; dg.DagsterInstance.get()"
                            ".add_dynamic_partitions('fifo_versions', [sys.argv[1]])",
                            partition], cwd=self.launcher.cwd, env=self.launcher.env,
                           check=True, timeout=120)
            args += ["--tags", json.dumps({"dagster/partition": partition})]
        if not wait:
            return subprocess.Popen(args, cwd=self.launcher.cwd, env=self.launcher.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True, text=True)
        return subprocess.run(args, cwd=self.launcher.cwd, env=self.launcher.env,
                              capture_output=True, text=True, timeout=120)

    def start_worker(self, node: Node) -> None:
        """``dagster-celery worker start`` in the node's directory, on this test's queue."""
        node.log = node.cwd / "worker.log"
        with open(node.log, "ab") as log:
            node.proc = subprocess.Popen(
                [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                 "-y", "celery.yaml", "-q", self.queue, "-n", node.name, "--",
                 "--concurrency=1", "--prefetch-multiplier=1", "--without-heartbeat",
                 "--without-gossip", "--without-mingle"],
                cwd=node.cwd, env=node.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def kill_worker(self, node: Node) -> None:
        """SIGKILL the worker's whole process group (celery and its pool processes)."""
        if node.proc is not None and node.proc.poll() is None:
            os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait()


def _node(name: str, root: Path, dotenv: dict[str, str], pg_url: str) -> Node:
    cwd, home = root / name, root / name / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    (cwd / ".env").write_text("".join(f"{k}={v}\n" for k, v in {
        **dotenv, "RECON_HOME": str(cwd / "recon_home")}.items()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if k not in SETTINGS_VARIABLES and not k.startswith(("RECON_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), DAGSTER_PG_URL=pg_url,
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")  # celery, beside dagster-celery
    return Node(name, cwd, home, env)


def _wait_ready(node: Node, deadline_s: float = 90) -> None:
    """Until the worker logs Celery's ``ready.`` line (it consumes the queue from then on)."""
    end = time.monotonic() + deadline_s
    while b" ready." not in node.log.read_bytes():
        if node.proc.poll() is not None or time.monotonic() > end:
            raise AssertionError(f"{node.name} did not start: {node.log.read_text()[-2000:]}")
        time.sleep(0.2)


@pytest.fixture
def celery_cluster(tmp_path, dagster_pg_url) -> Iterator[callable]:
    """A factory: ``celery_cluster(dotenv)`` writes each node's ``.env`` from ``dotenv`` and
    starts both workers."""
    if not _broker_up():
        pytest.fail("RabbitMQ is not listening on 127.0.0.1:5672 (.ci/run starts it)")
    clusters: list[Cluster] = []

    def start(dotenv: dict[str, str]) -> Cluster:
        queue = f"recon-test-{uuid.uuid4().hex[:12]}"
        dotenv = {**dotenv, "RECON_CELERY_BROKER": BROKER}
        cluster = Cluster(queue, _node("launcher", tmp_path, dotenv, dagster_pg_url))
        # Dagster's storage exists before the workers start, as on a deployed cluster (README,
        # Scaling out): two workers creating it at once on an empty database race on its
        # CREATE TABLEs, and one of them dies.
        subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=cluster.launcher.cwd,
                       env=cluster.launcher.env, check=True, timeout=120,
                       capture_output=True)
        for name in ("worker_a", "worker_b"):
            node = _node(name, tmp_path, dotenv, dagster_pg_url)
            (node.cwd / "celery.yaml").write_text(yaml.safe_dump({"execution": {"config": {
                "broker": BROKER, "backend": "rpc://",
                "config_source": {"task_default_queue": queue}}}}), encoding="utf-8")
            cluster.workers.append(node)
            cluster.start_worker(node)
        clusters.append(cluster)
        for node in cluster.workers:  # a worker still starting would leave the queue to the
            _wait_ready(node)         # other one: both must consume before a run is launched
        return cluster

    try:
        yield start
    finally:
        for cluster in clusters:
            for node in cluster.workers:
                cluster.kill_worker(node)
