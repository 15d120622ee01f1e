"""Backfill workflow on SQLite, PostgreSQL and a BotTrader-shaped table: exact, idempotent, atomic."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import text

from recon_assets.errors import LedgerError
from recon_assets.ledger import backfill
from recon_assets.ledger.backfill import RequestStateError, UnfillableColumnError
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.reconcile.backfill_data import create, ledger_rows, missing_orders

def test_create_approve_apply_inserts_exact_rows_with_extras(store):
    before = ledger_rows(store)
    ids = create(store)
    assert len(ids) == 3  # o-existing is already in trade_records
    with store.connect() as conn:
        requests = backfill.list_requests(conn, "pending")
    assert requests["order_id"].tolist() == ["o-1", "o-2", "o-3"]
    assert requests.iloc[0][["price", "size", "total_fees_usd", "tier", "created_by",
                             "reconciliation_run_id"]].tolist() == [
        Decimal("65000.12"), Decimal("0.00012345"), Decimal("0.39"), 3, "alice", 7]

    with store.begin() as conn:
        assert backfill.approve(conn, ids[:2], "bob") == ids[:2]
        backfill.reject(conn, ids[2:], "bob")
    with store.begin() as conn:
        result = backfill.apply(conn, None, "carol")
    assert result.applied_ids == ids[:2]
    assert sorted(result.inserted_order_ids) == ["o-1", "o-2"]

    trades = store.read_trades().raise_if_bad().set_index("order_id")
    expected = missing_orders().set_index("order_id")
    for oid in ("o-1", "o-2"):
        assert trades.loc[oid].to_dict() == expected.loc[oid].to_dict()
    assert "o-3" not in trades.index  # rejected
    after = ledger_rows(store)
    assert after["o-existing"] == before["o-existing"]  # untouched
    row = after["o-1"]
    trigger = row["trigger"] if isinstance(row["trigger"], dict) else json.loads(row["trigger"])
    assert trigger == {"trigger": "manual_backfill"}
    assert (row["source"], row["status"], row["ingest_via"], row["last_reconciled_via"]) == (
        "reconciliation", "filled", "reconciliation", "recon-assets tier 3")
    assert row["last_reconciled_at"] is not None

    with store.connect() as conn:
        states = backfill.list_requests(conn).set_index("id")
    assert states.loc[ids[0], ["status", "decided_by", "applied_by"]].tolist() == [
        "applied", "bob", "carol"]
    assert states.loc[ids[2], "status"] == "rejected"
    assert states.loc[ids[0], "applied_at"] is not None


def test_second_create_and_second_apply_change_nothing(store):
    ids = create(store)
    with store.begin() as conn:
        backfill.approve(conn, ids, "bob")
    with store.begin() as conn:
        backfill.apply(conn, None, "carol")
    rows, requests = ledger_rows(store), None
    with store.connect() as conn:
        requests = backfill.list_requests(conn)
    assert create(store) == []
    with store.begin() as conn:
        assert backfill.apply(conn, None, "carol") == backfill.ApplyResult()
        assert backfill.apply(conn, ids, "carol") == backfill.ApplyResult()  # explicit ids
    assert ledger_rows(store) == rows
    with store.connect() as conn:
        pd.testing.assert_frame_equal(backfill.list_requests(conn), requests)


def test_an_order_booked_meanwhile_is_marked_applied_but_not_written(store):
    ids = create(store)
    with store.begin() as conn:
        backfill.approve(conn, ids[:1], "bob")
        conn.execute(text("UPDATE backfill_requests SET order_id = 'o-existing-2' "
                          "WHERE id = :i"), {"i": ids[0]})
        conn.execute(text("UPDATE trade_records SET order_id = 'o-existing-2'"))
    before = ledger_rows(store)
    with store.begin() as conn:
        result = backfill.apply(conn, None, "carol")
    assert result.inserted_order_ids == [] and result.already_present_order_ids == [
        "o-existing-2"]
    assert ledger_rows(store) == before


def test_review_only_from_pending_with_errors_naming_the_id(store):
    ids = create(store)
    with store.begin() as conn:
        backfill.reject(conn, ids[:1], "bob")
    for action in (backfill.approve, backfill.reject):
        with pytest.raises(RequestStateError, match=f"request {ids[0]}: is rejected"):
            with store.begin() as conn:
                action(conn, ids, "bob")
    with pytest.raises(RequestStateError, match="request 999: no such request"):
        with store.begin() as conn:
            backfill.approve(conn, [999], "bob")
    with pytest.raises(RequestStateError, match=f"request {ids[1]}: is pending"):
        with store.begin() as conn:
            backfill.apply(conn, ids[1:2], "carol")
    with store.connect() as conn:  # the failed calls changed nothing
        assert backfill.list_requests(conn)["status"].tolist() == [
            "rejected", "pending", "pending"]


def test_a_failure_mid_apply_leaves_nothing_written(store):
    ids = create(store)
    with store.begin() as conn:
        backfill.approve(conn, ids, "bob")
        if store.dialect == "sqlite":
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON trade_records "
                              "WHEN NEW.order_id = 'o-3' BEGIN SELECT RAISE(ABORT, 'no'); END"))
        else:
            conn.execute(text("ALTER TABLE trade_records ADD CONSTRAINT refuse "
                              "CHECK (order_id <> 'o-3')"))
    before = ledger_rows(store)
    with pytest.raises(LedgerError):
        with store.begin() as conn:
            backfill.apply(conn, None, "carol")
    assert ledger_rows(store) == before
    with store.connect() as conn:
        assert set(backfill.list_requests(conn)["status"]) == {"approved"}


def test_an_unfillable_not_null_column_is_named_and_nothing_written(bottrader_pg_url):
    store = LedgerStore(bottrader_pg_url)
    store.ensure_schema()
    with store.begin() as conn:
        conn.execute(text("ALTER TABLE trade_records ADD COLUMN strategy varchar NOT NULL"))
        ids = backfill.create_requests(conn, missing_orders(), tier=1, reason="tier 1",
                                       created_by="alice", run_id=None)
        backfill.approve(conn, ids, "bob")
    with pytest.raises(UnfillableColumnError, match="trade_records.strategy") as err:
        with store.begin() as conn:
            backfill.apply(conn, None, "carol")
    assert err.value.column == "strategy"
    assert ledger_rows(store) == {}
    with store.connect() as conn:
        assert set(backfill.list_requests(conn)["status"]) == {"approved"}
    store.dispose()
