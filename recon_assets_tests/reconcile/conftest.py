"""Fixtures of the reconciliation and backfill tests."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.reconcile.backfill_data import EXISTING


@pytest.fixture(params=["sqlite", "postgresql", "bottrader"])
def store(request):
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url",
                                   "bottrader": "bottrader_pg_url"}[request.param])
    store = LedgerStore(url)
    store.ensure_schema()
    with store.begin() as conn:
        trigger = "CAST(:trigger AS jsonb)" if store.dialect == "postgresql" else ":trigger"
        conn.execute(text(
            "INSERT INTO trade_records (order_id, symbol, side, order_time, price, size, "
            f"total_fees_usd, trigger, status, source) VALUES (:order_id, :symbol, :side, "
            f":order_time, :price, :size, :total_fees_usd, {trigger}, :status, :source)"),
            {**EXISTING, "order_time": EXISTING["order_time"].replace(tzinfo=None)}
            if store.dialect == "sqlite" else EXISTING)
    yield store
    store.dispose()
