"""Orders and helpers shared by the backfill tests: a ledger holding one order, and findings."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from sqlalchemy import text

from recon_assets.ledger import backfill
from recon_assets.ledger.store import LedgerStore
from recon_assets.trades import TRADE_COLUMNS

T0 = pd.Timestamp("2024-02-01 10:30:00.123456", tz="UTC")
EXISTING = {"order_id": "o-existing", "symbol": "BTC-USD", "side": "buy",
            "order_time": T0.to_pydatetime(), "price": "41000.5", "size": "0.25",
            "total_fees_usd": "1.5", "trigger": '{"trigger": "bot"}', "status": "open",
            "source": "bot"}


def missing_orders() -> pd.DataFrame:
    rows = [("o-1", "buy", "65000.12", "0.00012345", "0.39"),
            ("o-2", "sell", "3012.5", "1.5", "0"),
            ("o-3", "buy", "0.1", "1234.56789", "0.007"),
            ("o-existing", "buy", "1", "1", "1")]  # reached the ledger meanwhile
    return pd.DataFrame([{"order_id": oid, "symbol": "BTC-USD", "side": side,
                          "order_time": T0 + pd.Timedelta(minutes=i), "price": Decimal(p),
                          "size": Decimal(s), "total_fees_usd": Decimal(f)}
                         for i, (oid, side, p, s, f) in enumerate(rows)], columns=TRADE_COLUMNS)


def create(store: LedgerStore) -> list[int]:
    with store.begin() as conn:
        return backfill.create_requests(conn, missing_orders(), tier=3, reason="tier 3 audit",
                                        created_by="alice", run_id=7)


def ledger_rows(store: LedgerStore) -> dict[str, dict]:
    with store.connect() as conn:
        rows = conn.execute(text("SELECT * FROM trade_records ORDER BY order_id")).mappings()
        return {r["order_id"]: dict(r) for r in rows}
