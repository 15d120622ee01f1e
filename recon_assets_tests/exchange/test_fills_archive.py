"""The fills archive and sync state on real SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, select

from recon_assets.errors import LedgerError
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.models import fills_frame, normalize_fills
from recon_assets.ledger import fills
from recon_assets.ledger.bulk import copy_frame
from recon_assets.ledger.fills import archive_fills, get_sync_value, read_fills, set_sync_value
from recon_assets.ledger.schema import UtcDateTime, exchange_fills
from recon_assets.ledger.store import LedgerStore

FILLS, _ = normalize_fills(demo_history().fills)
#: What the archive gives back: everything but the account's user id.
ARCHIVED = FILLS.assign(user_id=None)


def count(store: LedgerStore) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.count()).select_from(exchange_fills)).scalar()


def test_archive_is_exact_and_idempotent(store):
    with store.begin() as conn:
        assert archive_fills(conn, FILLS) == len(FILLS)
    with store.begin() as conn:
        assert archive_fills(conn, FILLS) == 0
        assert archive_fills(conn, pd.concat([FILLS.head(3), FILLS.head(3)])) == 0
    assert count(store) == len(FILLS)
    pd.testing.assert_frame_equal(read_fills(store), ARCHIVED)


def test_only_new_trade_ids_are_inserted_and_existing_rows_never_change(store):
    with store.begin() as conn:
        assert archive_fills(conn, FILLS.head(10)) == 10
    changed = FILLS.head(5).assign(price=Decimal("1"))
    with store.begin() as conn:
        assert archive_fills(conn, pd.concat([changed, FILLS.iloc[10:20]])) == 10
    archive = read_fills(store)
    kept = archive[~archive["conflicting"]]
    assert list(kept["price"]) == list(FILLS.head(20)["price"])
    # The other values are not lost either: kept beside, for review (issue 14).
    assert sorted(archive[archive["conflicting"]]["trade_id"]) == sorted(changed["trade_id"])


def test_read_filters(store):
    with store.begin() as conn:
        archive_fills(conn, FILLS)
    orders = sorted(set(FILLS["order_id"]))[::7]
    start, end = FILLS["trade_time"].iloc[100], FILLS["trade_time"].iloc[600]
    by_product = read_fills(store, product_ids=["SOL-USD", "ETH-USD"])
    assert set(by_product["product_id"]) == {"SOL-USD", "ETH-USD"}
    assert len(by_product) == (FILLS["product_id"] != "BTC-USD").sum()
    by_order = read_fills(store, order_ids=orders + [f"unknown-{i}" for i in range(1500)])
    pd.testing.assert_frame_equal(
        by_order, ARCHIVED[ARCHIVED["order_id"].isin(orders)].reset_index(drop=True))
    in_range = read_fills(store, start=start.to_pydatetime(), end=end.to_pydatetime())
    expected = ARCHIVED[(ARCHIVED["trade_time"] >= start) & (ARCHIVED["trade_time"] <= end)]
    pd.testing.assert_frame_equal(in_range, expected.reset_index(drop=True))


def test_empty_archive_reads_as_typed_empty_frame(store):
    empty = read_fills(store)
    assert empty.empty and list(empty.columns) == list(FILLS.columns)
    with store.begin() as conn:
        assert archive_fills(conn, FILLS.head(0)) == 0


def test_sync_values_and_atomic_commit(store):
    with store.begin() as conn:
        assert get_sync_value(conn, "cursor") is None
        set_sync_value(conn, "cursor", "a")
        set_sync_value(conn, "cursor", "b")
    with pytest.raises(LedgerError):
        with store.begin() as conn:
            archive_fills(conn, FILLS.head(5))
            set_sync_value(conn, "cursor", "c")
            set_sync_value(conn, None, "boom")  # NOT NULL name: the transaction fails
    with store.connect() as conn:
        assert get_sync_value(conn, "cursor") == "b"
    assert count(store) == 0


def test_fills_another_sync_archived_meanwhile_are_counted_once(store, monkeypatch):
    """Between looking a page's trade ids up and writing them, another sync may archive some:
    on PostgreSQL the direct COPY then hits the unique key, rolls back to its savepoint and
    the page goes in through the temporary table, inserting and counting only the new ones."""
    with store.begin() as conn:
        assert archive_fills(conn, FILLS.head(5)) == 5
    monkeypatch.setattr(fills, "_archived", lambda conn, ids: fills_frame([])[fills.ARCHIVED])
    with store.begin() as conn:  # as if the lookup had run before the other sync committed
        assert archive_fills(conn, FILLS.head(12)) == 7
    assert count(store) == 12
    pd.testing.assert_frame_equal(read_fills(store), ARCHIVED.head(12))


def test_archived_decimals_keep_their_digits_and_scale(store):
    """Decimals go into the archive as they would bind (on PostgreSQL COPY formats them
    itself): every digit, trailing zeros and all, no exponent form."""
    amounts = [Decimal("0.00000001"), Decimal("1E-8"), Decimal("12.50000"), Decimal("7E+2"),
               Decimal("0.123456789012345678901234567890")]
    page = FILLS.head(len(amounts)).assign(price=amounts, size=amounts[::-1])
    with store.begin() as conn:
        assert archive_fills(conn, page) == len(amounts)
    back = read_fills(store).set_index("trade_id").loc[page["trade_id"]]
    for column in ("price", "size"):
        assert [format(v, "f") for v in back[column]] == [format(v, "f") for v in page[column]]


def test_new_fills_are_not_looked_up_and_a_refused_copy_falls_back_to_the_lookup(
        store, monkeypatch):
    """On PostgreSQL a page of new fills is COPied without a lookup; a page holding an
    archived fill (here re-read once with the same values, once with another price) is
    refused by the unique key, then looked up: the re-read is nothing, the other price a
    conflict, the new ones counted."""
    lookups: list[int] = []
    real_archived = fills._archived
    monkeypatch.setattr(fills, "_archived",
                        lambda conn, ids: lookups.append(len(ids)) or real_archived(conn, ids))
    with store.begin() as conn:
        assert archive_fills(conn, FILLS.head(5)) == 5
    assert lookups == ([] if store.dialect == "postgresql" else [5])
    changed = FILLS.iloc[[1]].assign(price=Decimal("1.5"))
    page = pd.concat([FILLS.iloc[[0]], changed, FILLS.iloc[5:9]], ignore_index=True)
    with store.begin() as conn:
        assert archive_fills(conn, page) == 4
    assert lookups[-1] == 6 and count(store) == 9
    assert fills.under_review(store) == (1, 0)


def test_copied_times_are_utc_floored_to_the_microsecond_whatever_their_zone(pg_url):
    """COPY writes each time as the driver would bind it: the same instant in UTC, floored to
    the microsecond (before 1970 too), a missing time as NULL."""
    store = LedgerStore(pg_url)
    table = Table("times", MetaData(), Column("id", Integer), Column("at", UtcDateTime))
    times = pd.Series(pd.to_datetime(
        ["1969-12-31T23:59:59.9999995Z", None, "2025-11-01T00:05:57.591000999Z",
         "2026-03-29T01:30:00.000001Z"], utc=True, format="ISO8601"))
    frame = pd.DataFrame({"id": range(4), "at": times.dt.tz_convert("Europe/Paris")})
    with store.begin() as conn:
        table.create(conn)
        copy_frame(conn, "times", list(table.c), frame)
        back = [row.at for row in conn.execute(select(table).order_by(table.c.id))]
    assert back == [None if pd.isna(t) else t.floor("us").to_pydatetime() for t in times]
    store.dispose()


def test_frames_copied_in_one_copy_arrive_whole_and_in_order_or_not_at_all(pg_url,
                                                                           monkeypatch):
    """copy_frames renders each chunk while the one before it is sent: every row arrives, in
    order, across frames and chunk boundaries; a value that cannot be written fails the COPY
    and the transaction writes nothing."""
    from recon_assets.ledger import bulk
    from recon_assets.ledger.schema import ExactDecimal
    from recon_assets.money import NotADecimal

    monkeypatch.setattr(bulk, "_CHUNK", 3)  # chunks of 3 rows, frames of 0 to 7
    store = LedgerStore(pg_url)
    table = Table("pieces", MetaData(), Column("id", Integer), Column("size", ExactDecimal))
    frames = [pd.DataFrame({"id": range(start, start + n),
                            "size": [Decimal(f"{i}.50") for i in range(n)]})
              for start, n in ((0, 7), (7, 0), (7, 3), (10, 1))]
    with store.begin() as conn:
        table.create(conn)
        assert bulk.copy_frames(conn, "pieces", list(table.c), iter(frames)) == 11
        back = conn.execute(select(table.c.id, table.c.size).order_by(table.c.id)).all()
    assert back == [(i, s) for f in frames for i, s in zip(f["id"], f["size"])]
    assert [str(s) for _i, s in back[:3]] == ["0.50", "1.50", "2.50"]
    bad = frames[2].assign(size=[Decimal(1), "one", Decimal(2)])
    with pytest.raises(NotADecimal, match="'one'"):
        with store.begin() as conn:
            bulk.copy_frames(conn, "pieces", list(table.c), iter([frames[0], bad, frames[3]]))
    assert count_rows(store, table) == 11
    store.dispose()


def count_rows(store: LedgerStore, table: Table) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()
