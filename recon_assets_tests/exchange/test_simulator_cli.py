"""The ``recon-assets simulator`` hooks: options, and a real server process stopped by signal."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recon_assets.errors import ConfigError
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.simulator import write_fills_jsonl
from recon_assets.exchange.simulator.cli import add_simulator_arguments, run_simulator
from recon_assets_tests.exchange import all_fills, sdk_client

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVE = ("import argparse, sys\n"
         "from recon_assets.exchange.simulator.cli import add_simulator_arguments, run_simulator\n"
         "parser = argparse.ArgumentParser()\n"
         "add_simulator_arguments(parser)\n"
         "sys.exit(run_simulator(parser.parse_args()))\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_simulator_arguments(parser)
    return parser


def test_options_and_defaults() -> None:
    args = _parser().parse_args(["--port", "8799", "--fills", "f.jsonl"])
    assert (args.port, args.fills, args.key_file, args.host) == (8799, Path("f.jsonl"), None,
                                                                 "127.0.0.1")
    assert (args.rate_limit, args.fail_rate, args.latency, args.retention_days, args.seed) == (
        None, 0.0, 0, None, None)
    args = _parser().parse_args(["--port", "0", "--fills", "f", "--key-file", "k.json",
                                 "--rate-limit", "30", "--fail-rate", "0.2", "--latency",
                                 "15", "--retention-days", "84", "--seed", "3"])
    assert (args.key_file, args.rate_limit, args.fail_rate, args.latency,
            args.retention_days, args.seed) == (Path("k.json"), 30, 0.2, 15, 84.0, 3)
    assert (args.truncate_rate, args.html_errors) == (0.0, False)
    assert args.inject == ()
    args = _parser().parse_args(["--port", "0", "--fills", "f", "--truncate-rate", "0.1",
                                 "--html-errors", "--inject", "reversals,late"])
    assert (args.truncate_rate, args.html_errors, args.inject) == (0.1, True,
                                                                   ("reversals", "late"))


@pytest.mark.parametrize("argv", [
    [], ["--port", "1"], ["--fills", "f"], ["--port", "x", "--fills", "f"],
    ["--port", "1", "--fills", "f", "--fail-rate", "1.5"],
    ["--port", "1", "--fills", "f", "--rate-limit", "0"],
    ["--port", "1", "--fills", "f", "--latency", "-1"],
    ["--port", "1", "--fills", "f", "--truncate-rate", "2"],
    ["--port", "1", "--fills", "f", "--inject", "reversals,typos"],
])
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        _parser().parse_args(argv)
    assert raised.value.code == 2


def test_unreadable_or_invalid_fills_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read fills file"):
        run_simulator(_parser().parse_args(["--port", "0", "--fills", "missing.jsonl"]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"entry_id": "e1"}\n')
    with pytest.raises(ConfigError, match="e1: trade_id: missing"):
        run_simulator(_parser().parse_args(["--port", "0", "--fills", str(bad)]))


@pytest.mark.slow
def test_serves_until_sigterm_and_never_prints_the_key(tmp_path: Path) -> None:
    fills = demo_history().fills[:150]
    write_fills_jsonl(tmp_path / "fills.jsonl", fills)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--port", "0", "--fills", "fills.jsonl",
         "--rate-limit", "100"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:(\d+)) \(key file: (.+)\)$", banner.strip())
        assert match, banner
        key_file = Path(match.group(3))
        assert key_file == tmp_path / "simulator-key.json"
        client = sdk_client(int(match.group(2)), key_file)
        assert len(all_fills(client, limit=40)) == 150
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "GET /api/v3/brokerage/orders/historical/fills 200" in err
    secret = json.loads(key_file.read_text())["privateKey"]
    for text in (banner, out, err):
        assert "PRIVATE KEY" not in text and secret[40:80] not in text and "Bearer" not in text
