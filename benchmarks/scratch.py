"""A throwaway PostgreSQL schema per row, and a fast way to fill its ``trade_records``.

The server is ``RECON_BENCH_PG_URL``, else ``RECON_TEST_PG_URL``, else database ``test`` on
127.0.0.1:5432 (as the tests use). The schema is created for the row and dropped after it,
whatever happens, so benchmarks never touch real tables.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator
from urllib.parse import quote

import pandas as pd
from sqlalchemy import text

from recon_assets.ledger.store import LedgerStore
from recon_assets.money import decimal_str
from recon_assets.trades import TRADE_COLUMNS

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    return (os.environ.get("RECON_BENCH_PG_URL") or os.environ.get("RECON_TEST_PG_URL")
            or DEFAULT_PG_URL)


@contextlib.contextmanager
def scratch_store() -> Iterator[LedgerStore]:
    """A ledger in a fresh schema ``bench_<hex>`` with recon-assets' tables; dropped after."""
    base = pg_base_url()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = LedgerStore(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    store = LedgerStore(f"{base}{sep}options={quote(f'-csearch_path={schema}')}")
    try:
        store.ensure_schema()
        yield store
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def load_trades(store: LedgerStore, trades: pd.DataFrame) -> None:
    """Put a trades frame into ``trade_records`` with COPY (setup only, not measured)."""
    names = ", ".join(TRADE_COLUMNS)
    raw = store.engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy(
                f"COPY trade_records ({names}) FROM STDIN") as copy:
            for row in trades[TRADE_COLUMNS].itertuples(index=False, name=None):
                order_id, symbol, side, when, price, size, fee = row
                copy.write_row((order_id, symbol, side, when.to_pydatetime(),
                                decimal_str(price), decimal_str(size), decimal_str(fee)))
        raw.commit()
        with raw.cursor() as cursor:
            cursor.execute("ANALYZE trade_records")
        raw.commit()
    finally:
        raw.close()
