"""validate_allocations: a correct version passes every rule; each kind of damage fails exactly
the rules it should, naming the rows."""

from __future__ import annotations

import random
from decimal import Decimal

import pandas as pd
import pytest

from recon_assets.fifo import RULE_NAMES, allocate, validate_allocations
from recon_assets_tests.fifo.histories import START, random_history

D = Decimal


def _ledger() -> pd.DataFrame:
    rows = [("b1", "buy", 0, "100", "2", "1"), ("b2", "buy", 1, "110.5", "3", "0"),
            ("s1", "sell", 2, "120", "4", "2"), ("s2", "sell", 3, "130", "1", "0.3"),
            ("e1", "buy", 0, "10", "5", "0")]
    return pd.DataFrame([{"order_id": o, "symbol": "ETH-USD" if o == "e1" else "BTC-USD",
                          "side": side, "order_time": START + pd.Timedelta(hours=h),
                          "price": D(p), "size": D(s), "total_fees_usd": D(f)}
                         for o, side, h, p, s, f in rows])


def _as_stored(allocations: pd.DataFrame) -> pd.DataFrame:
    """What the ledger gateway reads back: Decimal objects, None, version bookkeeping."""
    stored = allocations.astype(object).where(allocations.notna(), None)
    return stored.assign(id=range(1, len(stored) + 1), allocation_version=3,
                         allocation_batch_id="batch", allocation_time=START)


def _failed(results: list) -> set[str]:
    return {r.name for r in results if not r.passed}


def _total(allocations: pd.DataFrame) -> Decimal:
    return sum(allocations["pnl_usd"].dropna().tolist(), D(0))


@pytest.mark.parametrize("stored", [False, True])
def test_a_correct_version_passes_every_rule(stored: bool) -> None:
    ledger = _ledger()
    allocations = allocate(ledger)
    frame = _as_stored(allocations) if stored else allocations
    results = validate_allocations(frame, ledger, reported_total_pnl=_total(allocations))
    assert [r.name for r in results] == RULE_NAMES
    assert _failed(results) == set()
    assert all(r.failing == [] and r.failing_count == 0 for r in results)
    assert {r.name: r.blocking for r in results} == {n: n != "no_unmatched_sells"
                                                      for n in RULE_NAMES}
    total = next(r for r in results if r.name == "total_pnl_consistent")
    assert total.metadata["total_pnl_usd"] == str(_total(allocations))


def test_random_histories_validate() -> None:
    rng = random.Random("rules")
    for _ in range(40):
        ledger = random_history(rng, rng.randint(1, 40), max_places=rng.choice([2, 8, 12]))
        allocations = allocate(ledger)
        results = validate_allocations(_as_stored(allocations), ledger,
                                       reported_total_pnl=_total(allocations))
        assert _failed(results) <= {"no_unmatched_sells"}


def _damaged(change) -> tuple[set[str], dict[str, list[dict]]]:
    ledger = _ledger()
    allocations = _as_stored(allocate(ledger))
    total = _total(allocations)
    allocations = change(allocations)
    results = validate_allocations(allocations, ledger, reported_total_pnl=total)
    return _failed(results), {r.name: r.failing for r in results}


def _pair(frame: pd.DataFrame, sell: str, buy: str) -> pd.Series:
    return (frame["sell_order_id"] == sell) & (frame["buy_order_id"] == buy)


def test_doubled_size() -> None:
    def change(frame):
        frame.loc[_pair(frame, "s1", "b2"), "allocated_size"] *= 2
        return frame
    failed, rows = _damaged(change)
    assert failed == {"sells_fully_allocated", "no_buy_over_allocated", "arithmetic"}
    assert rows["sells_fully_allocated"][0]["sell_order_id"] == "s1"
    assert rows["sells_fully_allocated"][0]["detail"] == "allocated 6 of 4"
    assert rows["no_buy_over_allocated"][0]["buy_order_id"] == "b2"
    assert rows["arithmetic"][0]["detail"].startswith("proceeds_usd: stored 240")


def test_changed_pnl() -> None:
    def change(frame):
        frame.loc[_pair(frame, "s2", "b2"), "pnl_usd"] += D("0.00000001")
        return frame
    failed, rows = _damaged(change)
    assert failed == {"arithmetic", "total_pnl_consistent"}
    assert rows["arithmetic"][0]["sell_order_id"] == "s2"
    assert rows["arithmetic"][0]["detail"].startswith("pnl_usd: stored 19.20000001")


def test_duplicated_row() -> None:
    failed, rows = _damaged(lambda f: pd.concat([f, f[_pair(f, "s1", "b1")]],
                                                ignore_index=True))
    assert failed == {"no_duplicate_pairs", "sells_fully_allocated", "no_buy_over_allocated",
                      "total_pnl_consistent"}
    assert rows["no_duplicate_pairs"] == [{"sell_order_id": "s1", "buy_order_id": "b1",
                                           "symbol": "BTC-USD",
                                           "detail": "pair appears 2 times"}]


def test_buy_time_after_sell() -> None:
    def change(frame):
        frame.loc[_pair(frame, "s1", "b1"), "buy_time"] = START + pd.Timedelta(days=9)
        return frame
    failed, rows = _damaged(change)
    assert failed == {"no_buy_after_sell"}
    assert (rows["no_buy_after_sell"][0]["sell_order_id"],
            rows["no_buy_after_sell"][0]["buy_order_id"]) == ("s1", "b1")


def test_unknown_buy_id() -> None:
    def change(frame):
        frame.loc[_pair(frame, "s2", "b2"), "buy_order_id"] = "nope"
        return frame
    failed, rows = _damaged(change)
    assert failed == {"references_exist"}
    assert rows["references_exist"] == [{"sell_order_id": "s2", "buy_order_id": "nope",
                                         "symbol": "BTC-USD",
                                         "detail": "buy not in the ledger"}]


def test_buy_of_another_symbol() -> None:
    def change(frame):
        frame.loc[_pair(frame, "s1", "b1"), "buy_order_id"] = "e1"
        return frame
    failed, rows = _damaged(change)
    # e1 is a real ledger buy, so its price also makes the stored amounts wrong.
    assert failed == {"references_exist", "arithmetic"}
    assert rows["references_exist"][0]["detail"] == "buy is another symbol in the ledger"


def test_missing_sell_and_unmatched_rows() -> None:
    ledger = pd.concat([_ledger(), pd.DataFrame([{
        "order_id": "s3", "symbol": "BTC-USD", "side": "sell",
        "order_time": START + pd.Timedelta(hours=4), "price": D(1), "size": D(7),
        "total_fees_usd": D(0)}])], ignore_index=True)
    allocations = allocate(ledger)
    results = {r.name: r for r in validate_allocations(allocations, ledger)}
    unmatched = results["no_unmatched_sells"]
    assert (unmatched.passed, unmatched.severity, unmatched.blocking) == (False, "WARN", False)
    assert unmatched.failing[0]["detail"] == "UNMATCHED: 7 of 7 not covered by earlier buys"
    strict = {r.name: r for r in validate_allocations(allocations, ledger, strict=True)}
    assert (strict["no_unmatched_sells"].severity, strict["no_unmatched_sells"].blocking) == (
        "ERROR", True)
    dropped = allocations[allocations["sell_order_id"] != "s3"]
    results = {r.name: r for r in validate_allocations(dropped, ledger)}
    assert _failed(results.values()) == {"sells_fully_allocated"}
    assert results["sells_fully_allocated"].failing[0]["detail"] == "allocated 0 of 7"


def test_failing_rows_are_capped_but_counted() -> None:
    orders = []
    for i in range(120):
        orders += [{"order_id": f"b{i}", "side": "buy", "order_time": START},
                   {"order_id": f"s{i}", "side": "sell", "order_time": START}]
    ledger = pd.DataFrame(orders).assign(symbol="SOL-USD", price=D(1), size=D(1),
                                         total_fees_usd=D(0))
    allocations = allocate(ledger).assign(buy_time=START + pd.Timedelta(days=1))
    result = next(r for r in validate_allocations(allocations, ledger)
                  if r.name == "no_buy_after_sell")
    assert (result.failing_count, len(result.failing)) == (120, 50)
    assert set(result.failing[0]) >= {"sell_order_id", "buy_order_id", "detail"}
