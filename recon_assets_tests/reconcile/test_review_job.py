"""backfill_review_job: the review workflow from the UI, on a real ledger, through Dagster."""

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import text

from recon_assets.exchange.demo import demo_history
from recon_assets.ledger import backfill
from recon_assets.ledger.resources import LedgerResource
from recon_assets.ledger.store import LedgerStore
from recon_assets.reconcile.review_job import backfill_review_job
from recon_assets_tests.conftest import seed_trade_records

HISTORY = demo_history()
MISSING = [o for o in HISTORY.orders
           if o["order_id"] in set(HISTORY.missing_buy_ids) | set(HISTORY.missing_sell_ids)]


def _run(url: str, **config) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(jobs=[backfill_review_job],
                          resources={"ledger": LedgerResource(database_url=url)})
    return defs.resolve_job_def("backfill_review_job").execute_in_process(
        run_config={"ops": {"review_backfill_requests": {"config": config}}},
        raise_on_error=False)


def test_approve_then_apply_from_the_launchpad_inserts_each_order_once(ledger_url):
    seed_trade_records(ledger_url, HISTORY.ledger_orders)
    store = LedgerStore(ledger_url)
    with store.begin() as conn:
        ids = backfill.create_requests(conn, pd.DataFrame(MISSING), tier=3, reason="test",
                                       created_by="test", run_id=None)
    assert _run(ledger_url, request_ids=ids, action="approve", by="alice").success
    applied = _run(ledger_url, request_ids=[], action="apply", by="alice")
    assert applied.success
    with store.connect() as conn:
        statuses = conn.execute(text("SELECT DISTINCT status, decided_by, applied_by FROM "
                                     "backfill_requests")).all()
        present = conn.execute(text("SELECT count(*) FROM trade_records")).scalar()
    assert statuses == [("applied", "alice", "alice")]
    assert present == len(HISTORY.ledger_orders) + len(MISSING)


def test_a_bad_id_fails_with_the_cli_message_and_changes_nothing(ledger_url):
    seed_trade_records(ledger_url, HISTORY.ledger_orders)
    result = _run(ledger_url, request_ids=[999], action="approve", by="alice")
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error.cause
    assert error.cls_name == "RequestStateError" and "999" in error.message


def test_the_launchpad_refuses_an_unknown_action(sqlite_url):
    with pytest.raises(dg.DagsterInvalidConfigError, match="delete"):
        _run(sqlite_url, request_ids=[1], action="delete", by="x")
