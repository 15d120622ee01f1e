"""Benchmark: ``recon_assets.diff.compare_orders`` against datacompy's ``PandasCompare``.

Both get the very same two trades frames (Decimal money, the ledger in a shuffled order as a
database returns it, with missing, phantom and altered orders) and the same tolerances. Each
is timed ``repeats`` times, alternating, and the best time of each is kept, so a busy machine
slows both alike. Run from the repository root:
``.venv/bin/python -m benchmarks.diff --n 1000000``.
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal

import datacompy
import numpy as np
import pandas as pd

from benchmarks import forms
from recon_assets.diff import Tolerances, compare_orders


def make_frames(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` exchange orders, and a ledger lacking 0.1%, with 0.05% altered and 0.01% extra."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    exchange = pd.DataFrame({
        "order_id": pd.Series([f"order-{i:09d}" for i in range(n)], dtype=object),
        "symbol": pd.Series(rng.choice(["BTC-USD", "ETH-USD", "SOL-USD"], n), dtype=object),
        "side": pd.Series(rng.choice(["buy", "sell"], n), dtype=object),
        "order_time": start + pd.to_timedelta(np.sort(rng.integers(0, 10**8, n)), unit="s"),
        "price": _decimals(rng.integers(100, 10**7, n), 2),
        "size": _decimals(rng.integers(1, 10**9, n), 8),
        "total_fees_usd": _decimals(rng.integers(0, 10**6, n), 6),
    })
    ledger = exchange.sample(frac=1.0, random_state=seed).iloc[n // 1000:]
    ledger = ledger.reset_index(drop=True)
    altered = rng.choice(len(ledger), n // 2000, replace=False)
    ledger.loc[altered, "price"] = [p + Decimal("0.01") for p in ledger.loc[altered, "price"]]
    extra = exchange.iloc[: n // 10000].assign(
        order_id=lambda f: "phantom-" + f["order_id"].astype(str))
    ledger = pd.concat([ledger, extra.astype({"order_id": object})], ignore_index=True)
    return exchange, ledger


def _decimals(units: np.ndarray, places: int) -> pd.Series:
    return pd.Series([Decimal(int(u)).scaleb(-places) for u in units], dtype=object)


def run(n: int, seed: int, repeats: int = 3, form: str = "decimal") -> dict:
    """Time both tools on the same frames, money in ``form`` (:mod:`benchmarks.forms`);
    return the times, their ratio and what each found."""
    exchange, ledger = (forms.as_form(f, form) for f in make_frames(n, seed))
    tol = Tolerances()
    ours, theirs = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        diff = compare_orders(exchange, ledger, tol)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        compare = datacompy.PandasCompare(
            exchange, ledger, join_columns="order_id",
            abs_tol={"size": float(tol.size), "price": float(tol.price),
                     "total_fees_usd": float(tol.fee)},
            rel_tol={"price": float(tol.price)}, df1_name="exchange", df2_name="ledger")
        mismatched = len(compare.all_mismatch())
        theirs.append(time.perf_counter() - started)
    return {
        "n": n, "seed": seed, "repeats": repeats, "form": form,
        "compare_orders_seconds": round(min(ours), 3),
        "datacompy_seconds": round(min(theirs), 3),
        "speedup": round(min(theirs) / min(ours), 1),
        "compare_orders_found": {k: diff.counts()[k] for k in
                                 ("missing_orders", "phantom_orders", "mismatched_orders")},
        "datacompy_found": {"missing_orders": len(compare.df1_unq_rows),
                            "phantom_orders": len(compare.df2_unq_rows),
                            "mismatched_orders": mismatched},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="orders on the exchange")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--form", choices=forms.FORMS, default="decimal")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.seed, args.repeats, args.form), indent=2))


if __name__ == "__main__":
    main()
