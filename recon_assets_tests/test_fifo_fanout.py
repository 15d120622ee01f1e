"""``fifo_allocations`` fans out one step per symbol, and the version it writes is the one the
sequential path writes, row for row."""

import dagster as dg
from sqlalchemy import text

from recon_assets.definitions import build_definitions
from recon_assets.fifo.service import compute_version
from recon_assets.ledger import versions
from recon_assets.ledger.store import LedgerStore
from recon_assets.settings import load_settings
from recon_assets_tests.conftest import run_version_partition, seed_trade_records

COLUMNS = ["sell_order_id", "buy_order_id", "symbol", "allocated_size", "cost_basis_usd",
           "proceeds_usd", "net_proceeds_usd", "pnl_usd", "notes"]


def test_one_step_per_symbol_and_same_rows_as_sequential(ledger_url, monkeypatch):
    from recon_assets.exchange.demo import demo_history

    seed_trade_records(ledger_url, demo_history().ledger_orders)
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    defs = build_definitions(load_settings())  # the ledger is a setting, read when built
    with dg.instance_for_test() as instance:
        result = run_version_partition(defs.resolve_job_def("fifo_job"), 1, instance)
    steps = {e.step_key for e in result.all_events if e.is_step_success}
    assert {"fifo_allocations.fifo_allocate_symbol[0_BTC_USD]",
            "fifo_allocations.fifo_allocate_symbol[1_ETH_USD]",
            "fifo_allocations.fifo_allocate_symbol[2_SOL_USD]"} <= steps
    store = LedgerStore(ledger_url)
    sequential = compute_version(store)
    assert sequential.version == 2
    with store.connect() as conn:
        fanned = versions.read_allocations(conn, 1)[COLUMNS]
        alone = versions.read_allocations(conn, 2)[COLUMNS]
        logged = conn.execute(text("SELECT allocation_version, trade_count, total_pnl_usd "
                                   "FROM fifo_computation_log ORDER BY 1")).all()
    key = ["symbol", "sell_order_id", "buy_order_id"]
    assert fanned.sort_values(key, ignore_index=True).equals(
        alone.sort_values(key, ignore_index=True))
    assert logged[0][1:] == logged[1][1:]
