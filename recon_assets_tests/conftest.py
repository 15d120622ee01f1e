"""Shared fixtures: real SQLite files and real PostgreSQL schemas, one per test.

PostgreSQL is the server at ``RECON_TEST_PG_URL`` (default: database ``test`` on
127.0.0.1:5432, trust auth). Each test gets its own schema through ``search_path``, so tests
never see each other's tables and the bot's real tables are never touched.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

PG_BASE_URL = os.environ.get("RECON_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _admin_engine():
    return create_engine(PG_BASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No test reads the developer's own configuration or writes outside its tmp_path."""
    for name in list(os.environ):
        if name.startswith(("COINBASE_", "RECON_", "DAGSTER_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECON_HOME", str(tmp_path / "recon_home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, private PostgreSQL schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_BASE_URL else "?"
    yield f"{PG_BASE_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


BOTTRADER_DDL = """
CREATE TABLE trade_records (
    order_id varchar PRIMARY KEY,
    parent_id varchar,
    parent_ids varchar[],
    symbol varchar NOT NULL,
    side varchar NOT NULL,
    order_time timestamptz NOT NULL,
    price double precision NOT NULL,
    size double precision NOT NULL,
    pnl_usd double precision,
    total_fees_usd double precision,
    trigger jsonb NOT NULL,
    order_type varchar,
    status varchar NOT NULL,
    source varchar NOT NULL,
    cost_basis_usd double precision,
    sale_proceeds_usd double precision,
    net_sale_proceeds_usd double precision,
    remaining_size double precision,
    realized_profit double precision,
    ingest_via varchar,
    last_reconciled_at timestamptz,
    last_reconciled_via varchar
)
"""


@pytest.fixture
def bottrader_pg_url(pg_url: str) -> str:
    """A PostgreSQL schema holding an empty BotTrader-shaped ``trade_records`` table."""
    from recon_assets.ledger.store import LedgerStore

    store = LedgerStore(pg_url)
    with store.begin() as conn:
        conn.execute(text(BOTTRADER_DDL))
    store.dispose()
    return pg_url


def seed_trade_records(url: str, orders: list[dict], *, with_own_tables: bool = True) -> None:
    """Insert orders into whatever ``trade_records`` the ledger has (ours or BotTrader's),
    filling BotTrader's NOT NULL extras like the bot would. ``with_own_tables=False`` leaves
    the ledger as a bot has it: ``trade_records`` (created if missing) and nothing of ours."""
    from sqlalchemy import MetaData, Table, insert

    from recon_assets.ledger import schema
    from recon_assets.ledger.store import LedgerStore

    store = LedgerStore(url)
    if with_own_tables:
        store.ensure_schema()
    else:
        with store.begin() as conn:
            schema.trade_records.create(conn, checkfirst=True)
    with store.begin() as conn:
        table = Table("trade_records", MetaData(), autoload_with=conn)
        extras = {"trigger": {"trigger": "bot"}, "status": "filled", "source": "websocket"}
        rows = []
        for order in orders:
            row = {k: v for k, v in order.items() if k in table.c}
            row.update({name: value for name, value in extras.items() if name in table.c})
            if store.dialect == "sqlite":
                row = {k: (format(v, "f") if hasattr(v, "as_tuple") else v)
                       for k, v in row.items()}
            rows.append(row)
        conn.execute(insert(table), rows)
    store.dispose()


@dataclass
class DemoExchange:
    simulator: Any
    history: Any


@pytest.fixture
def demo_exchange(tmp_path, monkeypatch) -> Iterator[DemoExchange]:
    """The demo history served by a real simulator, with the environment pointing at it and
    a persistent Dagster home for the runs."""
    from recon_assets.exchange.demo import demo_history
    from recon_assets.exchange.simulator import Simulator

    history = demo_history()
    key_file = tmp_path / "sim-key.json"
    with Simulator(history.fills, key_file) as simulator:
        monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(key_file))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        (tmp_path / "dagster_home").mkdir()
        yield DemoExchange(simulator, history)


def run_version_partition(job: Any, version: int, instance: Any = None, **kwargs: Any) -> Any:
    """Execute a FIFO-version job (or ``dg.materialize`` a list of assets) on the partition of
    ``version``, adding the dynamic partition first as the sensor and the CLI do."""
    import dagster as dg

    from recon_assets.fifo.partitions import FIFO_VERSIONS

    instance = instance or dg.DagsterInstance.ephemeral()
    if not instance.has_dynamic_partition(FIFO_VERSIONS.name, str(version)):
        instance.add_dynamic_partitions(FIFO_VERSIONS.name, [str(version)])
    if isinstance(job, list):
        return dg.materialize(job, instance=instance, partition_key=str(version), **kwargs)
    return job.execute_in_process(instance=instance, partition_key=str(version), **kwargs)
