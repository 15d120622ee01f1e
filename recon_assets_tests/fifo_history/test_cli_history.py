"""The diff-versions, export and inventory commands, through their argparse definitions."""

from __future__ import annotations

import argparse
import csv
import json
from decimal import Decimal
from typing import Any

import pytest

from recon_assets.cli.history import add_history_commands, default_output, unmatched_path
from recon_assets.errors import EXIT_USAGE, ReconError
from recon_assets_tests.fifo_history.scenarios import demo_backfill


def _run(argv: list[str]) -> int:
    """Parse with the commands as parser.py defines them, and run the handler like main."""
    from recon_assets.cli.parser import _lazy

    parser = argparse.ArgumentParser(prog="recon-assets")
    sub = parser.add_subparsers()

    def add(name: str, help_text: str, handler: tuple[str, str], **kw: Any
            ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kw)
        p.set_defaults(handler=_lazy(*handler))
        return p

    add_history_commands(add)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ReconError as exc:
        return exc.exit_code


@pytest.fixture
def backfilled(ledger_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    return demo_backfill(ledger_url)


def test_paths():
    assert default_output(3, None, "csv") == "capital_gains_v3.csv"
    assert default_output(3, 2026, "parquet") == "capital_gains_v3_2026.parquet"
    assert unmatched_path("out/gains.parquet") == "out/gains.unmatched.csv"
    assert unmatched_path("gains") == "gains.unmatched.csv"


def test_export_command(backfilled, tmp_path, capsys):
    assert _run(["export", "--version", "1"]) == 0
    out, err = capsys.readouterr()
    total = format(backfilled.before.total_pnl_usd, "f")
    assert f"total gain or loss: {total} USD" in out
    assert "2026  BTC-USD" in out and "unmatched sells" in err
    with open(tmp_path / "capital_gains_v1.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(Decimal(r["Gain or Loss"]) for r in rows) == backfilled.before.total_pnl_usd
    assert (tmp_path / "capital_gains_v1.unmatched.csv").exists()
    assert _run(["export", "--version", "2", "--format", "parquet", "--year", "2026",
                 "--symbol", "SOL-USD", "--output", str(tmp_path / "sol.parquet")]) == 0
    out = capsys.readouterr().out
    assert "SOL-USD" in out and "BTC-USD" not in out
    assert (tmp_path / "sol.parquet").exists() and (tmp_path / "sol.unmatched.csv").exists()
    assert _run(["export", "--version", "9"]) == EXIT_USAGE


def test_inventory_command(backfilled, capsys):
    assert _run(["inventory", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 2 and data["at"] is None and data["lots"]
    held = sum(Decimal(lot["remaining_size"]) for lot in data["lots"]
               if lot["symbol"] == "BTC-USD")
    assert held == Decimal(next(s for s in data["symbols"]
                                if s["symbol"] == "BTC-USD")["remaining_size"])
    assert _run(["inventory", "--version", "1", "--at", "2026-09-01T00:00:00"]) == 0
    out, err = capsys.readouterr()
    assert "Inventory of FIFO version 1 at 2026-09-01T00:00:00+00:00" in out
    assert "ledger changed since version 1" in err
    assert _run(["inventory", "--at", "soon"]) == EXIT_USAGE


def test_diff_versions_command(backfilled, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert _run(["diff-versions", "1", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (data["old_version"], data["new_version"]) == (1, 2)
    assert Decimal(data["pnl_delta"]) == (backfilled.after.total_pnl_usd
                                          - backfilled.before.total_pnl_usd)
    assert set(data["causing_orders"]) <= backfilled.missing_ids
    assert _run(["diff-versions", "-q"]) == 0
    assert "**Version 1 -> 2**" in capsys.readouterr().out
    assert _run(["diff-versions", "1", "5"]) == EXIT_USAGE


def test_diff_versions_of_another_pair_is_an_audit_query_with_no_run(backfilled, capsys,
                                                                      tmp_path, monkeypatch):
    """Only version N against its predecessor is partition N's diff; 2 against 1 is answered
    from the stored allocations, and no run (nor partition, nor alert) is recorded."""
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert _run(["diff-versions", "2", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (data["old_version"], data["new_version"]) == (2, 1)
    assert Decimal(data["pnl_delta"]) == (backfilled.before.total_pnl_usd
                                          - backfilled.after.total_pnl_usd)
    assert _run(["diff-versions", "2", "1"]) == 0
    assert "**Version 2 -> 1**" in capsys.readouterr().out
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs_count() == 0
        assert instance.get_dynamic_partitions("fifo_versions") == []
