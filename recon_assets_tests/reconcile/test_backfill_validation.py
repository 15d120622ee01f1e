"""Backfill never writes a value it has not validated: a hostile request row (as an older
release or another tool could have stored it) is refused by ``apply``, named, and nothing of
that apply is written; an impossible finding never becomes a request."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from recon_assets.cli import main
from recon_assets.errors import EXIT_USAGE, BadRowError
from recon_assets.ledger import backfill
from recon_assets.ledger.backfill import InvalidRequestError
from recon_assets_tests.reconcile.backfill_data import create, ledger_rows, missing_orders

HOSTILE = [  # column, stored value, what the refusal says
    ("size", "1e400", "out of range"),
    ("size", "-0.5", "must be positive"),
    ("price", "NaN", "price"),
    ("price", "0", "must be positive"),
    ("price", "12.5000000000000000000000000000001", "decimal places"),
    ("total_fees_usd", "-1", "must not be negative"),
    ("total_fees_usd", "Infinity", "total_fees_usd"),
    ("side", "hold", "unknown side"),
    ("symbol", " ", "symbol"),
]


@pytest.mark.parametrize("column, value, words", HOSTILE)
def test_apply_refuses_a_hostile_request_row_and_writes_nothing(store, column, value, words):
    ids = create(store)
    with store.begin() as conn:
        backfill.approve(conn, ids, "bob")
        cast = "CAST(:v AS NUMERIC)" if store.dialect == "postgresql" and column not in (
            "side", "symbol") else ":v"
        conn.execute(text(f"UPDATE backfill_requests SET {column} = {cast} WHERE id = :i"),
                     {"v": value, "i": ids[1]})
    before = ledger_rows(store)
    with pytest.raises(InvalidRequestError) as err:
        with store.locked("backfill") as conn:
            backfill.apply(conn, None, "carol")
    message = str(err.value)
    assert f"request {ids[1]} (order o-2): {column}:" in message and words in message
    assert err.value.problems[0][:3] == (ids[1], "o-2", column)
    assert ledger_rows(store) == before  # the valid requests were not applied either
    with store.connect() as conn:
        assert set(backfill.list_requests(conn)["status"]) == {"approved"}


def test_cli_apply_of_a_hostile_request_exits_2_with_one_line(sqlite_url, monkeypatch,
                                                              capsys):
    from recon_assets.ledger.store import LedgerStore

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    store = LedgerStore(sqlite_url)
    store.ensure_schema()
    ids = create(store)
    with store.begin() as conn:
        backfill.approve(conn, ids, "bob")
        conn.execute(text("UPDATE backfill_requests SET size = '1e400' WHERE id = :i"),
                     {"i": ids[0]})
    assert main(["backfill", "apply"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"request {ids[0]} (order o-1): size: out of range" in err[0]
    assert ledger_rows(store) == {}
    store.dispose()


def test_an_impossible_finding_never_becomes_a_request(store):
    findings = missing_orders()
    findings.loc[1, "size"] = Decimal("1e400")
    with pytest.raises(BadRowError, match="o-2: size: out of range"):
        with store.begin() as conn:
            backfill.create_requests(conn, findings, tier=3, reason="tier 3", created_by="a",
                                     run_id=None)
    with store.connect() as conn:
        assert backfill.list_requests(conn).empty
