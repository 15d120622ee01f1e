"""Start the Dagster services of ``deploy/systemd`` as real subprocesses, for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import requests

from recon_assets_tests.production.conftest import ROOT

BIN = Path(sys.executable).parent
T = TypeVar("T")

#: SPEC section 1's variables: the services get them empty unless a test sets them, so a
#: developer's own .env in the checkout (empty beats .env) never reaches a test run.
SETTINGS_VARIABLES = (
    "DATABASE_URL", "RECON_HOME", "COINBASE_API_KEY", "COINBASE_API_SECRET", "COINBASE_KEY_FILE",
    "RECON_EXCHANGE_URL", "RECON_EXCHANGE", "RECON_SLACK_WEBHOOK_URL", "RECON_SMTP_HOST",
    "RECON_SMTP_PORT", "RECON_SMTP_USER", "RECON_SMTP_PASSWORD", "RECON_ALERT_FROM",
    "RECON_ALERT_TO", "RECON_SCHEDULE_TIMEZONE", "RECON_WEEKLY_CRON",
    "RECON_REQUESTS_PER_SECOND",
)


def service_env() -> dict[str, str]:
    """This process's environment (as the fixtures set it), with every setting pinned."""
    env = dict(os.environ)
    for name in SETTINGS_VARIABLES:
        env.setdefault(name, "")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def service(args: list[str], log_path: Path) -> Iterator[subprocess.Popen]:
    """Run ``.venv/bin/<args>`` in the checkout, like the systemd units; stop it (and the code
    servers and run workers it started, its process group) on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=ROOT, env=service_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_for(what: str, probe: Callable[[], T | None], proc: subprocess.Popen, log_path: Path,
             deadline_s: float = 120) -> T:
    """Poll ``probe`` until it returns a value; fail with the service's log when the process
    dies or the deadline passes (a hang guard, not a performance assertion)."""
    end = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value is not None:
            return value
        if proc.poll() is not None or time.monotonic() > end:
            state = f"exited {proc.returncode}" if proc.poll() is not None else "still waiting"
            raise AssertionError(f"{what}: {state}\n{log_path.read_text()[-4000:]}")
        time.sleep(0.5)


class GraphQL:
    """The webserver's GraphQL endpoint."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def up(self) -> bool | None:
        try:
            return requests.get(f"{self.base}/server_info", timeout=5).ok or None
        except requests.ConnectionError:
            return None

    def __call__(self, query: str, **variables) -> dict:
        response = requests.post(f"{self.base}/graphql", timeout=60,
                                 json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


def run_cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """One ``.venv/bin`` command in the checkout with :func:`service_env`."""
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT, env=service_env(),
                          capture_output=True, text=True, timeout=timeout)
