"""Benchmark: ``recon_assets.fifo.allocate`` against the ``Fraction`` reference FIFO, and
(``--form``) against the Decimal deque FIFO a user would write, per money form.

Both get the same trades frame, shaped like what the ledger gateway returns: ``Decimal`` money
(prices on each symbol's tick, sizes with up to 8 places, fees with up to 10), UTC times with
some orders sharing a timestamp, rows in no particular order. Sells sometimes exceed what is
held. The results are compared row by row, so the timing is of an exact answer. Run from the
repository root: ``.venv/bin/python -m benchmarks.fifo --orders 1000000 --symbols 20``.
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal

import numpy as np
import pandas as pd

from benchmarks import forms
from benchmarks.deque_fifo import deque_allocate
from recon_assets.fifo import allocate
from recon_assets.trades import normalize_trades
from recon_assets_tests.fifo.histories import assert_same_allocations
from recon_assets_tests.fifo.reference import reference_allocate


def make_trades(n_orders: int, n_symbols: int, seed: int) -> pd.DataFrame:
    """A bot-like history: mostly small buys and sells around a drifting price per symbol."""
    rng = np.random.default_rng(seed)
    symbol = rng.integers(0, n_symbols, n_orders)
    tick_places = rng.integers(2, 7, n_symbols)[symbol]
    base_price = (10.0 ** rng.uniform(-1, 5, n_symbols))[symbol]
    price_units = np.maximum(np.rint(base_price * rng.uniform(0.8, 1.25, n_orders)
                                     * 10.0 ** tick_places), 1).astype(np.int64)
    size_units = rng.integers(1, 10 ** 8, n_orders) * rng.choice([1, 10, 100], n_orders)
    is_sell = rng.random(n_orders) < 0.48
    fee_units = np.rint(price_units * 10.0 ** -tick_places * size_units * 1e-8 * 0.006
                        * 1e10).astype(np.int64)
    seconds = np.sort(rng.integers(0, 86_400 * 365, n_orders))
    order = rng.permutation(n_orders)
    return pd.DataFrame({
        "order_id": pd.Series([f"order-{i:09d}" for i in order], dtype=object),
        "symbol": pd.Series(np.array([f"SYM{s:03d}-USD" for s in range(n_symbols)],
                                     dtype=object)[symbol[order]], dtype=object),
        "side": np.where(is_sell[order], "sell", "buy").astype(object),
        "order_time": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(seconds[order], unit="s"),
        "price": _decimals(price_units[order], tick_places[order]),
        "size": _decimals(size_units[order], np.full(n_orders, 8)),
        "total_fees_usd": _decimals(fee_units[order], np.full(n_orders, 10)),
    })


def _decimals(units: np.ndarray, places: np.ndarray) -> pd.Series:
    return pd.Series([Decimal(int(u)).scaleb(-int(k)) for u, k in zip(units, places)],
                     dtype=object)


def _timed_allocate(trades: pd.DataFrame, repeats: int) -> tuple[pd.DataFrame, list[float]]:
    """``allocate``'s result and the seconds of each of ``repeats`` calls (the first also
    pays for fresh memory)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = allocate(trades)
        times.append(time.perf_counter() - started)
    return result, times


def run_deque(n_orders: int, n_symbols: int, seed: int, form: str, *,
              repeats: int = 3) -> dict:
    """Seconds for ``allocate`` (best of ``repeats``) and for the Decimal deque FIFO (once) on
    the money in ``form`` (:mod:`benchmarks.forms`); the results are compared row by row."""
    trades = forms.as_form(make_trades(n_orders, n_symbols, seed), form)
    result, times = _timed_allocate(trades, repeats)
    started = time.perf_counter()
    expected = deque_allocate(trades)
    baseline = time.perf_counter() - started
    assert_same_allocations(result, expected)
    return {"n_orders": n_orders, "n_symbols": n_symbols, "seed": seed, "form": form,
            "allocations": len(result), "allocate_seconds": round(min(times), 3),
            "allocate_first_call_seconds": round(times[0], 3),
            "deque_seconds": round(baseline, 3),
            "speedup": round(baseline / min(times), 1), "identical": True}


def run(n_orders: int, n_symbols: int, seed: int, *, reference: bool = True,
        repeats: int = 3) -> dict:
    """Seconds for ``allocate`` (best of ``repeats``, and its first call, which also pays for
    fresh memory) and for the reference (once); the two results are compared row by row."""
    trades = make_trades(n_orders, n_symbols, seed)
    result, times = _timed_allocate(trades, repeats)
    started = time.perf_counter()
    normalize_trades(trades)
    report = {"n_orders": n_orders, "n_symbols": n_symbols, "seed": seed,
              "allocations": len(result),
              "unmatched": int(result["buy_order_id"].isna().sum()),
              "allocate_seconds": round(min(times), 3),
              "allocate_first_call_seconds": round(times[0], 3),
              "normalize_seconds": round(time.perf_counter() - started, 3)}
    if reference:
        normalized = normalize_trades(trades).trades
        started = time.perf_counter()
        expected = reference_allocate(normalized)
        report["reference_seconds"] = round(time.perf_counter() - started, 3)
        report["speedup"] = round(report["reference_seconds"] / report["allocate_seconds"], 1)
        assert_same_allocations(result, expected)
        report["identical"] = True
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true",
                        help="time allocate only (the reference takes minutes at 1M orders)")
    parser.add_argument("--form", choices=forms.FORMS,
                        help="against the Decimal deque FIFO, money in this form")
    args = parser.parse_args()
    if args.form:
        print(json.dumps(run_deque(args.orders, args.symbols, args.seed, args.form,
                                   repeats=args.repeats)))
        return
    print(json.dumps(run(args.orders, args.symbols, args.seed, reference=not args.no_reference,
                         repeats=args.repeats)))


if __name__ == "__main__":
    main()
