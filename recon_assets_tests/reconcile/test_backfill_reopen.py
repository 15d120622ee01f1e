"""An order applied and later missing again gets a new request, on a ledger migrated from the
release whose ``backfill_requests`` was UNIQUE on ``order_id`` (SQLite, PostgreSQL, BotTrader)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from recon_assets import migrations
from recon_assets.ledger import backfill, schema
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.reconcile.backfill_data import create, ledger_rows

#: ``backfill_requests`` exactly as ``create_all`` made it before migrations existed.
OLD_BACKFILL_DDL = """
CREATE TABLE backfill_requests (
    id {id} NOT NULL, order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    order_time {time} NOT NULL, price {money} NOT NULL, size {money} NOT NULL,
    total_fees_usd {money} NOT NULL, tier INTEGER NOT NULL, reason TEXT NOT NULL,
    status TEXT NOT NULL, created_at {time} NOT NULL, created_by TEXT NOT NULL,
    decided_at {time}, decided_by TEXT, applied_at {time}, applied_by TEXT,
    reconciliation_run_id INTEGER, PRIMARY KEY (id), UNIQUE (order_id)
)
"""
TYPES = {"sqlite": {"id": "INTEGER", "time": "DATETIME", "money": "TEXT"},
         "postgresql": {"id": "BIGSERIAL", "time": "TIMESTAMP WITH TIME ZONE",
                        "money": "NUMERIC"}}
WHEN = datetime(2024, 1, 5, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql", "bottrader"])
def old_store(request):
    """A ledger as the release before migrations left it: o-1 was backfilled (request
    applied), then the bot's ledger lost it again."""
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url",
                                   "bottrader": "bottrader_pg_url"}[request.param])
    store = LedgerStore(url)
    with store.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('bot_rev_42')"))  # the bot's
        conn.execute(text(OLD_BACKFILL_DDL.format(**TYPES[store.dialect])))
        schema.metadata.create_all(conn, tables=[t for t in schema.metadata.sorted_tables
                                                 if t.name != "backfill_requests"])
        conn.execute(insert(schema.backfill_requests).values(
            order_id="o-1", symbol="BTC-USD", side="buy", order_time=WHEN,
            price=Decimal("65000.12"), size=Decimal("0.00012345"),
            total_fees_usd=Decimal("0.39"), tier=1, reason="missing in ledger (tier 1)",
            status="applied", created_at=WHEN, created_by="alice", decided_at=WHEN,
            decided_by="bob", applied_at=WHEN, applied_by="bob"))
    yield store
    store.dispose()


def test_old_ledger_is_migrated_and_a_reappearing_gap_gets_a_new_request(old_store):
    old_store.ensure_schema()
    with old_store.connect() as conn:
        assert migrations.current_revision(conn) == "0004_allocations_version_key"
        assert not [c for c in inspect(conn).get_unique_constraints("backfill_requests")
                    if c["column_names"] == ["order_id"]]
        history = backfill.list_requests(conn)
    assert history[["id", "order_id", "status", "applied_by"]].values.tolist() == [
        [1, "o-1", "applied", "bob"]]  # the old request survives the migration

    ids = create(old_store)  # every finding is missing here; o-1 for the second time
    assert len(ids) == 4 and 1 not in ids
    assert create(old_store) == []  # open requests: idempotent
    with old_store.begin() as conn:
        backfill.approve(conn, ids, "carol")
    with old_store.begin() as conn:
        result = backfill.apply(conn, ids, "carol")
    assert sorted(result.inserted_order_ids) == ["o-1", "o-2", "o-3", "o-existing"]
    assert "o-1" in ledger_rows(old_store)
    with old_store.connect() as conn:
        again = backfill.list_requests(conn)
    o1 = again[again["order_id"] == "o-1"]
    assert o1[["status", "applied_by"]].values.tolist() == [["applied", "bob"],
                                                            ["applied", "carol"]]
    old_store.ensure_schema()  # at head already: nothing changes
    with old_store.connect() as conn:
        assert len(backfill.list_requests(conn)) == len(again)
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("bot_rev_42",)]  # the bot's own Alembic is left alone


def _indexes(store: LedgerStore) -> list[tuple]:
    with store.connect() as conn:
        return sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                      for i in inspect(conn).get_indexes("backfill_requests"))


def test_a_migrated_ledger_has_the_indexes_a_fresh_one_has(old_store, tmp_path):
    old_store.ensure_schema()
    fresh = LedgerStore(f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.ensure_schema()
    assert _indexes(old_store) == _indexes(fresh) == [
        ("ix_backfill_requests_order_id", ("order_id",), False),
        ("uq_backfill_requests_open_order", ("order_id",), True)]
    fresh.dispose()


def test_one_open_request_per_order_and_rejection_is_kept(store):
    ids = create(store)
    with store.begin() as conn:
        backfill.reject(conn, ids[:1], "bob")
        backfill.approve(conn, ids[1:2], "bob")
    assert create(store) == []  # rejected stays rejected; pending/approved stay open
    with pytest.raises(IntegrityError):  # the database itself refuses a second open one
        with store.engine.begin() as conn:
            row = backfill.list_requests(conn).iloc[1].to_dict()
            conn.execute(insert(schema.backfill_requests).values(
                {k: v for k, v in row.items() if k != "id"}))
    with store.connect() as conn:
        assert migrations.current_revision(conn) == "0004_allocations_version_key"
