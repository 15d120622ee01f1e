"""Bad fills from the exchange: ``recon-assets sync`` refuses them by trade id and field, and
nothing of their page (not even its good fills) reaches the ``exchange_fills`` archive. Here
the whole listing is one page; pages committed before a bad one are kept, see
``exchange/test_sync_fills.py::test_a_bad_fill_on_page_k_keeps_the_pages_before_it``."""

from __future__ import annotations

from recon_assets.cli import main
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.simulator import Simulator
from recon_assets.ledger.store import LedgerStore
from recon_assets_tests.reliability.conftest import count

GOOD = demo_history().fills[:40]
#: trade id -> (field the error must name, what the exchange sent instead)
BAD = {
    "bad-order-id": ("order_id", {"order_id": None}),
    "bad-product-empty": ("product_id", {"product_id": ""}),
    "bad-size": ("size", {"size": "-0.25"}),
    "bad-zero-size": ("size", {"size": "0"}),
    "bad-commission": ("commission", {"commission": "-1.5"}),
    "bad-huge-size": ("size", {"size": "1e400"}),
    "bad-huge-price": ("price", {"price": "1E+15"}),
    "bad-long-commission": ("commission", {"commission": "0." + "0" * 30 + "1"}),
    "bad-product-case": ("product_id", {"product_id": "btc usd"}),
}


def _bad_fills() -> list[dict]:
    return [{**GOOD[i], "trade_id": trade_id, "entry_id": f"entry-{trade_id}", **change}
            for i, (trade_id, (_, change)) in enumerate(BAD.items())]


def test_sync_refuses_bad_fills_by_trade_id_and_field_and_archives_nothing(
        sqlite_url, tmp_path, monkeypatch, capfd):
    LedgerStore(sqlite_url).ensure_schema()
    key_file = tmp_path / "sim-key.json"
    with Simulator(GOOD + _bad_fills(), key_file) as simulator:
        monkeypatch.setenv("RECON_EXCHANGE_URL", simulator.url)
        monkeypatch.setenv("COINBASE_KEY_FILE", str(key_file))
        monkeypatch.setenv("DATABASE_URL", sqlite_url)
        assert main(["sync", "-q"]) == 3
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("recon-assets: ") and "Traceback" not in err
    for trade_id, (field, _) in BAD.items():
        assert f"{trade_id}: {field}:" in lines[0], (trade_id, lines[0])
    assert out == ""
    assert count(sqlite_url, "SELECT count(*) FROM exchange_fills") == 0
    assert count(sqlite_url, "SELECT count(*) FROM sync_state") == 0
