"""Helpers for the reliability tests: real CLI subprocesses, table snapshots, sync points.

Everything here drives the real code: the installed ``recon-assets`` entry point, the real
simulator over HTTP, real SQLite files and real PostgreSQL schemas. Sync points wait for a
line a subprocess prints (never for a fixed time); the waits only bound a hung test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Iterator, Sequence

import pytest
from sqlalchemy import inspect, text

from recon_assets.ledger.store import LedgerStore

#: The console script pip installed next to this interpreter: the CLI users run.
RECON_ASSETS = str(Path(sys.executable).with_name("recon-assets"))
#: Upper bound for any one subprocess (a hang fails the test instead of blocking the suite).
HANG_SECONDS = 120
HELPER = "recon_assets_tests.reliability.helpers"
#: The repository root, so subprocesses can import ``recon_assets_tests`` (not installed).
REPO = Path(__file__).resolve().parents[2]


def child_env(**overrides: str | None) -> dict[str, str]:
    """This process's environment (already scrubbed by the autouse fixture) plus overrides;
    ``None`` removes a variable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_cli(args: Sequence[str], env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``recon-assets ARGS`` as a real subprocess; stdout and stderr captured as text."""
    return subprocess.run([RECON_ASSETS, *args], env=env or child_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=HANG_SECONDS)


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """Kill (by pid) whatever subprocess a failed test left running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Running:
    """A subprocess whose stdout and stderr are read line by line by two threads, so a test can
    wait for a line while the process keeps running (and never blocks on a full pipe)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(list(argv), env=env or child_env(), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _STARTED.append(self.proc)
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(name, stream), daemon=True)
                         for name, stream in (("stdout", self.proc.stdout),
                                              ("stderr", self.proc.stderr))]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines[name].append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines[name].append("")  # end of stream
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, marker: str, stream: str = "stderr", times: int = 1) -> str:
        """The ``times``-th line of ``stream`` containing ``marker``, once it is printed.

        Fails (instead of hanging) when the stream ends first, showing both streams, or when
        nothing new arrives for :data:`HANG_SECONDS`.
        """
        with self._changed:
            while True:
                lines = self.lines[stream]
                found = [line for line in lines if marker in line]
                if len(found) >= times:
                    return found[times - 1]
                if lines and lines[-1] == "":
                    pytest.fail(f"{stream} ended before a line with {marker!r}:\n"
                                + "".join(self.lines["stdout"] + self.lines["stderr"]))
                if not self._changed.wait(HANG_SECONDS):
                    pytest.fail(f"no line with {marker!r} within {HANG_SECONDS}s")

    def finish(self) -> tuple[int, str, str]:
        """Wait for the process; its exit code, whole stdout and whole stderr."""
        code = self.proc.wait(timeout=HANG_SECONDS)
        for reader in self._readers:
            reader.join(HANG_SECONDS)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, "".join(self.lines["stdout"]), "".join(self.lines["stderr"])


def start_cli(args: Sequence[str], env: dict[str, str] | None = None) -> Running:
    return Running([RECON_ASSETS, *args], env)


def start_helper(*args: str, env: dict[str, str] | None = None) -> Running:
    """``python -m recon_assets_tests.reliability.helpers ARGS`` (see that module)."""
    return Running([sys.executable, "-m", HELPER, *args], env)


def snapshot(url: str, tables: Sequence[str] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (or of ``tables``) as sorted tuples of text, to compare a
    ledger before and after something that must not change it."""
    store = LedgerStore(url)
    try:
        with store.connect() as conn:
            names = sorted(tables or inspect(conn).get_table_names())
            result = {}
            for name in names:
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).fetchall()
                result[name] = sorted(tuple("" if v is None else str(v) for v in row)
                                      for row in rows)
            return result
    finally:
        store.dispose()


def count(url: str, sql: str, **params: object) -> int:
    store = LedgerStore(url)
    try:
        with store.connect() as conn:
            return int(conn.execute(text(sql), params).scalar() or 0)
    finally:
        store.dispose()


@pytest.fixture
def recon_home(tmp_path) -> Iterator[Path]:
    """``$RECON_HOME`` of this test (set by the autouse fixture)."""
    yield Path(os.environ["RECON_HOME"])
