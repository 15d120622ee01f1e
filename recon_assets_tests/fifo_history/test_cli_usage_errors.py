"""Mistakes on the command line of ``export``, ``fifo`` and ``validate``: exit 2 with one line,
before anything is computed or recorded, and no file (finished or ``.partial``) left behind."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import func, select

from recon_assets.cli import main
from recon_assets.ledger.schema import fifo_allocations, fifo_computation_log
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.fifo_history.scenarios import BASE, MISSING_B2, backfill_history


@pytest.fixture
def two_versions(sqlite_url, tmp_path, monkeypatch) -> str:
    """A small ledger with versions 1 and 2, and a Dagster home whose runs can be counted."""
    backfill_history(sqlite_url, BASE, [MISSING_B2])
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return sqlite_url


def files_under(folder: Path) -> set[Path]:
    """Files a command could leave behind (the ledger's and Dagster's own are not those)."""
    return {p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("ledger.db")
            and "dagster_home" not in p.parts and "recon_home" not in p.parts}


def one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert out == "" and line.startswith("recon-assets: ")
    return line


@pytest.mark.parametrize("where", ["directory", "missing folder", "under a file", "/proc"])
def test_export_to_an_unusable_path_exits_2_and_leaves_no_file(where, two_versions, tmp_path,
                                                               capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "a_file").write_text("keep me\n")
    output = {"directory": tmp_path / "out", "missing folder": tmp_path / "nope" / "gains.csv",
              "under a file": tmp_path / "a_file" / "gains.csv",
              "/proc": Path("/proc/recon-assets-gains.csv")}[where]
    before = files_under(tmp_path)
    assert main(["export", "--version", "1", "--output", str(output)]) == 2
    assert str(output) in one_error_line(capsys)
    assert files_under(tmp_path) == before
    assert (tmp_path / "a_file").read_text() == "keep me\n"
    assert not list(Path("/proc").glob("recon-assets-gains*"))


@pytest.mark.parametrize("year", ["0", "-1", "10000"])
def test_export_of_an_impossible_year_exits_2(year, two_versions, tmp_path, capsys):
    before = files_under(tmp_path)
    assert main(["export", "--version", "1", "--year", year]) == 2
    assert "--year" in one_error_line(capsys)
    assert files_under(tmp_path) == before


def _state(url: str) -> tuple[int, int | None]:
    store = LedgerStore(url)
    try:
        with store.connect() as conn:
            return (conn.execute(select(func.count()).select_from(fifo_computation_log))
                    .scalar_one(),
                    conn.execute(select(func.max(fifo_allocations.c.allocation_version)))
                    .scalar_one())
    finally:
        store.dispose()


@pytest.mark.parametrize("command", [["fifo", "--replace"], ["validate"], ["export"]])
@pytest.mark.parametrize("version", ["0", "-2"])
def test_a_version_below_1_is_refused_before_anything_runs(command, version, two_versions,
                                                           tmp_path, capsys):
    before, files = _state(two_versions), files_under(tmp_path)
    quiet = [] if command[0] == "export" else ["-q"]  # export runs no Dagster job
    assert main([*command, "--version", version, *quiet]) == 2
    assert "--version" in one_error_line(capsys)
    assert _state(two_versions) == before and files_under(tmp_path) == files
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        assert instance.get_runs_count() == 0


def _runs(tmp_path: Path) -> int:
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        return instance.get_runs_count()


@pytest.mark.parametrize("argv, says", [
    (["validate", "--version", "99"], "version 99 does not exist"),
    (["fifo", "--symbol", "DOGE-USD"], "DOGE-USD"),
    (["fifo", "--version", "1"], "version 1 exists"),
    (["diff-versions", "5", "7"], "version 5 does not exist"),
    (["reconcile", "--tier", "1", "--version", "99"], "version 99 does not exist"),
    (["export", "--version", "99"], "version 99 does not exist"),
    (["inventory", "--version", "99"], "version 99 does not exist"),
])
def test_a_refusal_is_not_a_run(argv, says, two_versions, tmp_path, monkeypatch, capsys):
    """Refused before any run: exit 2, one line, no run (and so no partition) recorded."""
    monkeypatch.setenv("RECON_EXCHANGE", "simulator")  # reconcile gets past the exchange
    before, runs = _state(two_versions), _runs(tmp_path)
    assert main(argv) == 2
    assert says in one_error_line(capsys)
    assert _state(two_versions) == before and _runs(tmp_path) == runs
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        assert instance.get_dynamic_partitions("fifo_versions") == []


def test_a_validated_version_is_not_replaced(two_versions, tmp_path, capsys):
    store = LedgerStore(two_versions)
    try:
        with store.begin() as conn:
            conn.execute(fifo_computation_log.update().where(
                fifo_computation_log.c.allocation_version == 1).values(status="validated"))
    finally:
        store.dispose()
    before = _state(two_versions)
    assert main(["fifo", "--version", "1", "--replace", "-q"]) == 2
    assert "validated and immutable" in one_error_line(capsys)
    assert _state(two_versions) == before and _runs(tmp_path) == 0
