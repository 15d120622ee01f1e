from decimal import Decimal

import pytest
from sqlalchemy import text

from recon_assets.errors import ConfigError
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import load_settings


def test_default_settings_use_embedded_sqlite(tmp_path):
    settings = load_settings({}, cwd=tmp_path)
    assert settings.recon_home == (tmp_path / ".recon").resolve()
    assert settings.database_url == f"sqlite:///{settings.recon_home / 'ledger.db'}"
    assert settings.dagster_home == settings.recon_home / "dagster"
    assert settings.exchange_mode == "embedded"


def test_postgres_scheme_and_dotenv(tmp_path):
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://u@h/db\nRECON_HOME=/x\n")
    settings = load_settings({"RECON_HOME": "/y"}, cwd=tmp_path)
    assert settings.database_url == "postgresql://u@h/db"
    assert str(settings.recon_home) == "/y"


def test_secrets_are_not_in_repr(tmp_path):
    settings = load_settings({"COINBASE_API_KEY": "k", "COINBASE_API_SECRET": "SECRETXYZ",
                              "RECON_SLACK_WEBHOOK_URL": "https://hooks/SECRETHOOK"}, cwd=tmp_path)
    assert "SECRETXYZ" not in repr(settings) and "SECRETHOOK" not in repr(settings)
    assert settings.exchange_mode == "coinbase"


def test_exchange_url_needs_key_file(tmp_path):
    with pytest.raises(ConfigError, match="COINBASE_KEY_FILE"):
        load_settings({"RECON_EXCHANGE_URL": "http://127.0.0.1:1"}, cwd=tmp_path)


def test_ensure_schema_creates_only_missing(ledger_url):
    store = LedgerStore(ledger_url)
    created = store.ensure_schema()
    assert "trade_records" in created and "fifo_allocations" in created
    assert store.ensure_schema() == []


def test_bottrader_table_read_exactly_and_left_unchanged(bottrader_pg_url):
    store = LedgerStore(bottrader_pg_url)
    with store.begin() as conn:
        conn.execute(text(
            "INSERT INTO trade_records (order_id, symbol, side, order_time, price, size, "
            "total_fees_usd, trigger, status, source) VALUES "
            "('o1', 'BTC-USD', 'BUY', '2026-01-01 10:00:00+02', 0.1, 0.2, NULL, "
            "'{\"trigger\": \"bot\"}', 'filled', 'websocket'),"
            "('o2', 'BTC-USD', 'sell', '2026-01-02 10:00:00+00', 0.1::float8 + 0.2::float8, 0.3, 0.01, "
            "'{}', 'filled', 'websocket')"))
    before = store.table_columns("trade_records")
    created = store.ensure_schema()
    assert "trade_records" not in created
    assert store.table_columns("trade_records") == before
    trades = store.read_trades().raise_if_bad()
    rows = {r.order_id: r for r in trades.itertuples()}
    assert rows["o1"].price == Decimal("0.1") and rows["o1"].size == Decimal("0.2")
    assert rows["o1"].side == "buy" and rows["o1"].total_fees_usd == Decimal(0)
    assert rows["o1"].order_time.isoformat() == "2026-01-01T08:00:00+00:00"
    assert rows["o2"].price == Decimal("0.30000000000000004")
    assert rows["o2"].total_fees_usd == Decimal("0.01")
    with store.connect() as conn:
        raw = conn.execute(text("SELECT price FROM trade_records WHERE order_id='o1'")).scalar()
    assert raw == 0.1  # untouched double precision
