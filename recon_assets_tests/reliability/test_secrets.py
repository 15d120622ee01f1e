"""Secrets never leave in logs, errors, run records, files or alerts.

An operator session runs as a real subprocess with every kind of secret set (Coinbase API
secret, a CDP key file whose private key is known, a Slack webhook URL, an SMTP password, a
database password): sync, fifo, reconcile (tiers 1 and 3 with backfill), validate, backfill
list, a run against an unreachable database, and the alert sensor with both channels failing.
Then stdout, stderr, every file under the test's directory (``$RECON_HOME`` with its Dagster
home, event-log SQLite files, compute logs and reconciliation logs), the ledger's tables and
what reached the webhook are searched for each secret.

Also: every SQL statement built with an f-string only interpolates identifiers.
"""

from __future__ import annotations

import ast
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import inspect, text

import recon_assets
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.simulator import Simulator
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.alerts.conftest import _start_smtp
from recon_assets_tests.conftest import seed_trade_records
from recon_assets_tests.reliability.conftest import child_env, start_helper

HISTORY = demo_history()
WEBHOOK_TOKEN = "SECRET-HOOK-123"
SMTP_PASSWORD = "SMTP-PASS-SECRET-456"
DB_PASSWORD = "DBPASS-SECRET-789"
API_SECRET = ("-----BEGIN EC PRIVATE KEY-----\nAPISECRETabc123XYZ0987654321qwerty\n"
              "-----END EC PRIVATE KEY-----\n")
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")


class _Hook:
    """A Slack stand-in that records each POST and answers 404 (a revoked webhook)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(404)
                self.send_header("Content-Length", "10")
                self.end_headers()
                self.wfile.write(b"no_service")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{WEBHOOK_TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)


@pytest.fixture
def hook() -> Iterator[_Hook]:
    hook = _Hook()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def plain_smtp():
    """SMTP without STARTTLS: the sender must refuse to log in (the password stays home)."""
    controller, server = _start_smtp()
    yield server
    controller.stop()


def _with_password(url: str) -> str:
    assert url.startswith("postgresql://postgres@")
    return url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)


def _secrets(hook_url: str, key_file: Path) -> dict[str, bytes]:
    private_key = json.loads(key_file.read_text())["privateKey"]
    body_lines = [line for line in private_key.splitlines()
                  if line.strip() and not line.startswith("-----")]
    found = {"webhook url": hook_url, "webhook token": WEBHOOK_TOKEN,
             "smtp password": SMTP_PASSWORD, "database password": DB_PASSWORD,
             "api secret": "APISECRETabc123XYZ0987654321qwerty"}
    found.update({f"key file private key line {i}": line.strip()
                  for i, line in enumerate(body_lines) if len(line.strip()) >= 16})
    return {name: value.encode() for name, value in found.items()}


def _leaks(blob: bytes, secrets: dict[str, bytes]) -> list[str]:
    leaks = [name for name, value in secrets.items() if value in blob]
    if JWT.search(blob) or b"Bearer " in blob:
        leaks.append("a JWT / bearer token")
    return leaks


def _ledger_dump(url: str) -> bytes:
    store = LedgerStore(url)
    with store.connect() as conn:
        parts = [repr(conn.execute(text(f'SELECT * FROM "{table}"')).all())
                 for table in inspect(conn).get_table_names()]
    store.dispose()
    return "\n".join(parts).encode()


def test_no_secret_in_output_files_ledger_or_alerts(bottrader_pg_url, tmp_path, hook,
                                                     plain_smtp):
    seed_trade_records(bottrader_pg_url, HISTORY.ledger_orders)  # with gaps: findings, alerts
    ledger = _with_password(bottrader_pg_url)
    key_file = tmp_path / "sim-key.json"
    with Simulator(HISTORY.fills, key_file) as simulator:
        env = child_env(
            DATABASE_URL=ledger, RECON_EXCHANGE_URL=simulator.url,
            COINBASE_KEY_FILE=str(key_file), COINBASE_API_KEY="organizations/x/apiKeys/y",
            COINBASE_API_SECRET=API_SECRET, RECON_SLACK_WEBHOOK_URL=hook.url,
            RECON_SMTP_HOST=plain_smtp.host, RECON_SMTP_PORT=str(plain_smtp.port),
            RECON_SMTP_USER="alerts@example.com", RECON_SMTP_PASSWORD=SMTP_PASSWORD,
            RECON_ALERT_FROM="alerts@example.com", RECON_ALERT_TO="ops@example.com")
        dead_ledger = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:5432/recon_no_such_db"
        plan = [
            {"sensor": "check_failure_alert_sensor"},  # the first tick: what is seen is old
            {"argv": ["sync", "-v"]},
            {"argv": ["fifo", "-v"]},
            {"argv": ["reconcile", "--tier", "1", "-v"]},
            {"argv": ["reconcile", "--tier", "3", "--auto-backfill", "-v"]},
            {"argv": ["fifo", "-v"]},
            {"argv": ["validate", "--strict", "--json"]},
            {"argv": ["backfill", "list", "--json"]},
            {"argv": ["fifo", "-q"], "env": {"DATABASE_URL": dead_ledger}},
            {"argv": ["validate", "-q"], "env": {"DATABASE_URL": ledger}},
            {"sensor": "check_failure_alert_sensor"},
        ]
        plan_file = tmp_path / "plan.json"  # ours, not the runs': not searched
        plan_file.write_text(json.dumps(plan))
        code, out, err = start_helper("session", str(plan_file), env=env).finish()
    assert code == 0, err[-3000:]

    exits = re.findall(r"^EXIT (\d+) (.*)$", out, re.MULTILINE)
    assert [argv for _, argv in exits] == [" ".join(s["argv"]) for s in plan if "argv" in s]
    assert dict((argv, int(c)) for c, argv in exits)["fifo -q"] == 3  # the dead database
    assert "recon-assets: " in err and "postgres:***@" in err  # its one line, redacted
    assert "SENSOR check_failure_alert_sensor: No new failures" in out
    assert "SENSOR check_failure_alert_sensor: Alerted" in out
    assert hook.bodies, "no alert was attempted"  # the failing-alert path really ran
    assert "Alert channel slack failed (HTTP 404)" in err
    assert "refusing to send the password in clear" in err

    secrets = _secrets(hook.url, key_file)
    assert not _leaks(out.encode(), secrets), "stdout"
    assert not _leaks(err.encode(), secrets), "stderr"
    for body in hook.bodies:
        assert not _leaks(body, secrets), body[:500]
    assert not _leaks(_ledger_dump(bottrader_pg_url), secrets), "ledger tables"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p not in (key_file, plan_file)]
    assert any(p.suffix == ".db" for p in written)  # Dagster's SQLite storage is searched
    assert any(p.name.startswith("reconciliation_") for p in written)
    for path in written:
        assert not _leaks(path.read_bytes(), secrets), path


# -- SQL ---------------------------------------------------------------------------------------

#: SQL as this code base writes it (keywords in capitals), anywhere in an f-string's text.
SQL = re.compile(r"\b(?:SELECT|INSERT INTO|UPDATE|DELETE FROM|COPY|CREATE TABLE|DROP|"
                 r"ALTER TABLE|WHERE|FROM|VALUES|AND|OR)\b|\bIN \(")
#: Interpolations allowed in SQL f-strings: column and table names the code itself chose.
IDENTIFIER_SOURCES = {
    "', '.join(select_cols)",  # LedgerStore.read_trades: columns of TRADE_COLUMNS
    "', '.join(names)",  # bind parameter names :s0, :s1, ... / quoted column names
    "names",
    "table",  # bulk.copy_frame: a table the calling code names (fifo_allocations, staging)
    "listed",  # quoted column names from the table metadata (bulk, fills)
    "exchange_fills.name",  # archive_fills
    "staging",  # archive_fills: "fills_incoming_" + hex of a fresh uuid4
    "', '.join(exprs.values())",  # read_trades: trade_reads.read_expressions of TRADE_COLUMNS
    "', '.join(marks)",  # read_trades: bind parameter names :s0, :s1, ...
    # store._symbol_filter: TRIM(symbol) IN (...) and strpos(symbol, ...) > 0 over those
    # bind parameter names only
    "contains", "trimmed",
    "row",  # ledger_fingerprint: TRADE_COLUMNS names (or NULL, extract(epoch ...))
    "pg_row_hash(columns)",  # ledger_fingerprint: the md5 of ROW(row) above, as bigint
    "values",  # ledger_fingerprint: TRADE_COLUMNS names (or NULL)
    "_SQLITE_AGGREGATE",  # ledger_fingerprint: the constant name of our registered aggregate
    "statement",  # bulk.copy_out: a compiled SQLAlchemy SELECT, its values psycopg parameters
    # versions.diff_in_database: the constant query _PIECES (the column names of
    # version_diff.PIECE_VALUES) formatted with the bind parameter names :old/:new
    "a", "b", "c", "differ", "', '.join(PIECE_VALUES)",
    "group",  # ledger_fingerprint: the column grouped by, "symbol" (or NULL when missing)
    # check_results.symbol_digests: fifo_allocations columns (rules.ALLOCATION_INPUTS, each
    # looked up in the table's metadata) and scale(<column>) of its decimal ones
    "', '.join(values)",
    # check_results.symbol_digests and versions.diff_in_database: digest_terms() over
    # fifo_allocations column names (two aggregates, no value), and the constant filter
    # _ONLY (" AND symbol = ANY(:apart)", its value a bound parameter) or ""
    "digest_terms(columns)", "terms", "_ONLY", "only",
}


def test_sql_f_strings_interpolate_only_identifiers():
    """Values always travel as bound parameters; an f-string SQL statement may only splice
    in identifiers the code chose. A new interpolation must be added here after review."""
    offenders = []
    for path in Path(recon_assets.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.JoinedStr):
                continue
            literal = "".join(v.value for v in node.values
                              if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if not SQL.search(literal):
                continue
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    source = ast.unparse(value.value)
                    if source not in IDENTIFIER_SOURCES:
                        offenders.append(f"{path.name}:{node.lineno}: {{{source}}}")
    assert offenders == []


def test_hostile_text_in_the_ledger_is_data_not_sql(sqlite_url, monkeypatch, capsys):
    """Order ids and symbols with quotes and SQL in them go through symbol filters and FIFO as
    plain values; an unknown symbol is refused by name (exit 2) and writes nothing."""
    from recon_assets.cli import main

    hostile = "'); DROP TABLE trade_records; --"
    odd_symbol = f"SOL-USD{hostile}"
    orders = [{**o, "order_id": f"{o['order_id']}{hostile}",
               "symbol": odd_symbol if o["symbol"] == "SOL-USD" else o["symbol"]}
              for o in sorted(HISTORY.orders, key=lambda o: o["order_time"])[:60]]
    seed_trade_records(sqlite_url, orders)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert main(["fifo", "-q", "--symbol", f"BTC-USD{hostile}"]) == 2
    err = capsys.readouterr().err
    assert "no orders for" in err and f"BTC-USD{hostile}" in err
    assert main(["fifo", "-q", "--symbol", odd_symbol]) == 0
    assert main(["fifo", "-q"]) == 0
    capsys.readouterr()
    store = LedgerStore(sqlite_url)
    with store.connect() as conn:
        ids = set(conn.execute(text("SELECT order_id FROM trade_records")).scalars())
        by_version = dict(conn.execute(text(
            "SELECT allocation_version, count(DISTINCT symbol) FROM fifo_allocations "
            "GROUP BY allocation_version")).all())
        symbols_v1 = set(conn.execute(text(
            "SELECT symbol FROM fifo_allocations WHERE allocation_version = 1")).scalars())
    store.dispose()
    assert ids == {o["order_id"] for o in orders}
    assert symbols_v1 == {odd_symbol} and by_version[2] == len({o["symbol"] for o in orders})


def test_the_simulator_listens_on_loopback_only(tmp_path):
    """Its default host, and the embedded simulator every fresh machine starts (the CLI's
    ``--host`` default is checked in ``exchange/test_simulator_cli.py``)."""
    import inspect as pyinspect

    from recon_assets.exchange.resources import ExchangeResource
    from recon_assets.settings import load_settings

    assert pyinspect.signature(Simulator).parameters["host"].default == "127.0.0.1"
    resource = ExchangeResource.from_settings(load_settings()).process_config_and_initialize()
    with resource.get_client() as client:  # no exchange configured: embedded
        assert client.origin.startswith("http://127.0.0.1:")
