"""Huge and many-place values through every exact path: the exact result, never a wrapped one.

Plausibility rules keep such values out of the ledger and the archive, but the pure functions
are also a Python API: whatever they are given, integer arithmetic must not wrap around (a
size of ``1e400`` once aggregated to 0). Each result is checked against plain ``Decimal``
arithmetic in a context wide enough to be exact.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recon_assets.fifo import allocate
from recon_assets.fifo.rules import validate_allocations
from recon_assets.reconcile.aggregate import aggregate_fills
from recon_assets.reconcile.compare import compare_orders
from recon_assets.reconcile.tiers import count_buckets
from recon_assets_tests.reconcile.test_aggregate import T0, fill, frame

WIDE = decimal.Context(prec=2000, traps=[decimal.Inexact, decimal.InvalidOperation])
HALF_EVEN = decimal.Context(prec=2000, rounding=decimal.ROUND_HALF_EVEN)
#: Positive decimals from 1e-60 to past 1e400, with up to 40 significant digits.
VALUES = st.builds(lambda digits, exponent: Decimal((0, digits, exponent)),
                   st.lists(st.integers(0, 9), min_size=1, max_size=40).map(tuple)
                   .filter(any), st.integers(-60, 400))


def _order(order_id: str, side: str, minute: int, price: Decimal, size: Decimal,
           fee: Decimal = Decimal(0)) -> dict:
    return {"order_id": order_id, "symbol": "BTC-USD", "side": side,
            "order_time": T0 + pd.Timedelta(minutes=minute), "price": price, "size": size,
            "total_fees_usd": fee}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=5))
def test_aggregate_and_buckets_are_exact_for_any_magnitude(parts):
    fills = [fill(f"t{i}", "o", str(p), str(s), str(c), seconds=i)
             for i, (p, s, c) in enumerate(parts)]
    order = aggregate_fills(frame(*fills)).iloc[0]
    with decimal.localcontext(WIDE):
        size = sum(s for _, s, _ in parts)
        fees = sum(c for _, _, c in parts)
        notional = sum(p * s for p, s, _ in parts)
    assert order["size"] == size and order["total_fees_usd"] == fees
    places = max(18, max(-p.normalize(WIDE).as_tuple().exponent for p, _, _ in parts))
    average = HALF_EVEN.divide(notional, size).quantize(Decimal(1).scaleb(-places),
                                                         context=HALF_EVEN)
    assert order["price"] == average
    buckets = count_buckets(pd.DataFrame([order]))
    assert buckets["size_sum"].tolist() == [size] and buckets["count"].tolist() == [1]


@settings(max_examples=60, deadline=None)
@given(VALUES, VALUES)
def test_compare_sees_a_difference_between_huge_values_exactly(a, b):
    exchange = pd.DataFrame([_order("o", "buy", 0, a, a)])
    ledger = pd.DataFrame([_order("o", "buy", 0, a, b)])
    with decimal.localcontext(WIDE):
        differs = abs(a - b) > Decimal("1e-8")
    mismatched = compare_orders(exchange, ledger).mismatches
    assert (mismatched["field"] == "size").any() == differs


@settings(max_examples=40, deadline=None)
@given(VALUES, VALUES, VALUES, VALUES)
def test_allocate_and_its_validation_are_exact_for_any_magnitude(price, size, fee, sell_price):
    trades = pd.DataFrame([_order("b", "buy", 0, price, size, fee),
                           _order("s", "sell", 1, sell_price, size)])
    result = allocate(trades)
    row = result.iloc[0]
    cent = Decimal("1e-8")  # (price + fee / size) * size: all of it is sold
    cost = WIDE.add(WIDE.multiply(price, size), fee).quantize(cent, context=HALF_EVEN)
    proceeds = WIDE.multiply(sell_price, size).quantize(cent, context=HALF_EVEN)
    assert row["allocated_size"] == size
    assert row["cost_basis_usd"] == cost and row["proceeds_usd"] == proceeds
    failed = [r.name for r in validate_allocations(result, trades) if not r.passed]
    assert failed == []
