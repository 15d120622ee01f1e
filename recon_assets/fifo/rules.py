"""The validation rules of a FIFO version, as pure functions over allocations and the ledger.

Each rule gives a :class:`RuleResult`; the Dagster layer reports each one as the asset check
``check_fifo_allocations_<name>``. Sizes and amounts are compared as exact integers, and
amounts are recomputed from the ledger with the arithmetic and the single half-even rounding
of ``allocate``, so a stored value off by 1e-8 fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from recon_assets.fifo.arithmetic import arithmetic_failures
from recon_assets.fifo.columns import AllocationView, at_places, common_places, text
from recon_assets.money import round_money
from recon_assets.scaled import decimal_of, group_sums
from recon_assets.trades import normalize_trades_scaled

#: Raise when a rule's judgment or wording changes: results recorded under an older revision
#: (:mod:`recon_assets.ledger.check_results`) are then judged afresh.
RULES_REVISION = 1
RULE_NAMES = ["sells_fully_allocated", "no_buy_over_allocated", "no_duplicate_pairs",
              "no_buy_after_sell", "arithmetic", "total_pnl_consistent", "references_exist",
              "no_unmatched_sells"]
#: At most this many failing rows are listed in a result (``failing_count`` has them all).
SHOWN_ROWS = 50
#: The allocation columns the rules read (ids, version and batch fields are not judged), so a
#: validation reads no more of a stored version than these.
ALLOCATION_INPUTS = ["sell_order_id", "buy_order_id", "symbol", "allocated_size", "buy_price",
                     "sell_price", "buy_fees_per_unit", "sell_fees_per_unit", "cost_basis_usd",
                     "proceeds_usd", "net_proceeds_usd", "pnl_usd", "buy_time", "sell_time",
                     "notes"]

RULE_DESCRIPTIONS = {
    "sells_fully_allocated": "Every ledger sell is allocated (matched plus unmatched) to its "
                             "full size, within the 1e-8 dust.",
    "no_buy_over_allocated": "No buy is allocated more than its size.",
    "no_duplicate_pairs": "Each (sell, buy) pair, and each sell's unmatched row, appears once.",
    "no_buy_after_sell": "No sell is matched to a buy placed after it.",
    "arithmetic": "Prices, fees per unit, cost basis, proceeds, net proceeds and PnL equal "
                  "their exact recomputation from the ledger, rounded half-even to 8 places.",
    "total_pnl_consistent": "Every match has a PnL of at most 8 places, and their sum over the "
                            "symbols equals the total reported for the version.",
    "references_exist": "Every sell and buy id is a ledger order of that side and symbol.",
    "no_unmatched_sells": "Every sell is covered by earlier buys (unmatched sells point at "
                          "missing buys: run tier 1 reconciliation).",
}

_Found = tuple[int, list[dict[str, Any]]]  # failing count, the first SHOWN_ROWS of them


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict, with up to :data:`SHOWN_ROWS` failing rows and their total count."""

    name: str
    passed: bool
    severity: str  # "ERROR" or "WARN"
    blocking: bool
    description: str
    failing: list[dict[str, Any]] = field(default_factory=list)
    failing_count: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def validate_allocations(allocations: pd.DataFrame, trades: pd.DataFrame, *,
                         reported_total_pnl: Decimal | None = None,
                         strict: bool = False, normalized: bool = False) -> list[RuleResult]:
    """Every rule of :data:`RULE_NAMES`, in that order, for one version's allocations.

    ``trades`` is the ledger (at least the version's symbols); rows it cannot use are left
    out, so allocations naming them fail ``references_exist``. Unmatched sells are a WARN
    that does not block, unless ``strict`` makes them a blocking ERROR. With ``normalized``
    the trades are a frame the ledger's read already normalized (``NormalizedTrades.trades``,
    which has only usable rows): normalizing it again would change nothing, and costs a
    symbol's fan-out step about a fifth of its judging.
    """
    view = AllocationView(allocations,
                          trades if normalized else normalize_trades_scaled(trades).trades)
    metadata: dict[str, dict[str, Any]] = {name: {} for name in RULE_NAMES}
    checks: dict[str, Callable[[], _Found]] = {
        "sells_fully_allocated": lambda: _sells_fully_allocated(view),
        "no_buy_over_allocated": lambda: _no_buy_over_allocated(view),
        "no_duplicate_pairs": lambda: _no_duplicate_pairs(view),
        "no_buy_after_sell": lambda: _no_buy_after_sell(view),
        "arithmetic": lambda: arithmetic_failures(view, SHOWN_ROWS),
        "total_pnl_consistent": lambda: _total_pnl(view, reported_total_pnl,
                                                   metadata["total_pnl_consistent"]),
        "references_exist": lambda: _references_exist(view),
        "no_unmatched_sells": lambda: _no_unmatched_sells(view),
    }
    results = []
    for name in RULE_NAMES:
        count, failing = checks[name]()
        results.append(_result(name, count, failing, {"rows_checked": view.n, **metadata[name]},
                               strict))
    return results


def _result(name: str, count: int, failing: list[dict[str, Any]], metadata: dict[str, Any],
            strict: bool) -> RuleResult:
    lenient = name == "no_unmatched_sells" and not strict
    return RuleResult(name=name, passed=count == 0, severity="WARN" if lenient else "ERROR",
                      blocking=not lenient, description=RULE_DESCRIPTIONS[name],
                      failing=failing, failing_count=count, metadata=metadata)


def recorded_form(results: Sequence[RuleResult]) -> dict[str, Any]:
    """One symbol's results (judged without a reported total) as JSON, for
    :func:`combine_recorded`; severities are not kept: ``strict`` sets them when combined."""
    return {r.name: {"failing_count": r.failing_count, "failing": r.failing,
                     "metadata": r.metadata} for r in results}


#: The rules whose failing rows name no amount, only ids and notes: their wording does not
#: depend on the decimal places the rows are written with.
_WORDED_WITHOUT_AMOUNTS = frozenset({"no_duplicate_pairs", "no_unmatched_sells"})


def worded_alike_at_any_scale(recorded: Mapping[str, Any]) -> bool:
    """Whether one symbol's results (:func:`recorded_form`) read the same whatever decimal
    places its rows have: only rules that name no amount fail. So a judgment of a symbol's
    rows at their own places holds for them widened to a version's."""
    return all(not result["failing_count"] or name in _WORDED_WITHOUT_AMOUNTS
               for name, result in recorded.items())


def combine_recorded(per_symbol: Sequence[Mapping[str, Any]], *,
                     reported_total_pnl: Decimal | None = None,
                     strict: bool = False) -> list[RuleResult]:
    """The results of a version from its symbols' (:func:`recorded_form`, symbol by symbol),
    as :func:`validate_allocations` gives them over the whole version when no order id is
    under two symbols: counts and totals add up, failing rows are listed symbol by symbol
    (the first :data:`SHOWN_ROWS`), and the summed PnL is held against the reported total.
    A detail's decimal places follow each symbol's own rows."""
    results = []
    for name in RULE_NAMES:
        parts = [symbol[name] for symbol in per_symbol]
        count = sum(p["failing_count"] for p in parts)
        failing = [row for p in parts for row in p["failing"]][:SHOWN_ROWS]
        metadata: dict[str, Any] = {"rows_checked": sum(p["metadata"]["rows_checked"]
                                                        for p in parts)}
        if name == "total_pnl_consistent":
            units = sum(int(Decimal(p["metadata"]["total_pnl_usd"]).scaleb(8)) for p in parts)
            total = decimal_of(units, 8)
            metadata.update(total_pnl_usd=str(total),
                            symbols=sum(p["metadata"]["symbols"] for p in parts))
            count, failing = _against_reported(total, reported_total_pnl, count, failing,
                                               metadata)
        results.append(_result(name, count, failing, metadata, strict))
    return results


def _rows(view: AllocationView, bad: np.ndarray, detail: Callable[[int], str]) -> _Found:
    rows = np.flatnonzero(bad)
    return len(rows), view.failing(rows[:SHOWN_ROWS], [detail(int(i)) for i in
                                                       rows[:SHOWN_ROWS]])


def _per_order(view: AllocationView, at: np.ndarray, side: str) -> _Found:
    """Ledger orders of ``side`` whose allocated total is off (short sells, excess buys)."""
    ledger_size = view.ledger_size
    places = common_places((view.size, view.size_present),
                           (ledger_size, np.ones(len(view.ledger), dtype=bool)))
    allocated = group_sums(np.where(view.size_present, at, -1),
                           at_places(view.size, places)[0], len(view.ledger))
    size = at_places(ledger_size, places)[0]
    if side == "sell":
        dust = 10 ** (places - 8) if places >= 8 else 0
        off = np.abs(size - allocated) > dust
    else:
        off = allocated > size
    orders = np.flatnonzero((view.ledger["side"] == side).to_numpy() & np.asarray(off, bool))
    ids = view.ledger["order_id"].to_numpy(dtype=object)
    return len(orders), [{
        "sell_order_id": ids[i] if side == "sell" else None,
        "buy_order_id": ids[i] if side == "buy" else None,
        "symbol": view.ledger["symbol"].iat[i],
        "detail": f"allocated {text(allocated[i], places)} of {text(size[i], places)}",
    } for i in orders[:SHOWN_ROWS]]


def _sells_fully_allocated(view: AllocationView) -> _Found:
    return _per_order(view, view.sell_at, "sell")


def _no_buy_over_allocated(view: AllocationView) -> _Found:
    return _per_order(view, view.buy_at, "buy")


def _no_duplicate_pairs(view: AllocationView) -> _Found:
    sells = pd.factorize(view.sell_id, use_na_sentinel=False)[0]
    buys = pd.factorize(view.buy_id, use_na_sentinel=False)[0]
    pair = sells.astype(np.int64) * (buys.max(initial=0) + 1) + buys
    _, first, inverse, counts = np.unique(pair, return_index=True, return_inverse=True,
                                          return_counts=True)
    repeated = np.ones(view.n, dtype=bool)
    repeated[first] = False
    return _rows(view, repeated, lambda i: f"pair appears {counts[inverse[i]]} times")


def _no_buy_after_sell(view: AllocationView) -> _Found:
    stored_buy, stored_sell, times = (_utc(c) for c in (
        view.frame["buy_time"], view.frame["sell_time"], view.ledger["order_time"]))
    known = view.matched & (view.buy_at >= 0) & (view.sell_at >= 0)
    ledger_late = known & (times[view.buy_at] > times[view.sell_at])
    late = view.matched & ((stored_buy > stored_sell) | ledger_late)
    return _rows(view, late, lambda i: f"buy at {pd.Timestamp(stored_buy[i]).isoformat()}, "
                                       f"sell at {pd.Timestamp(stored_sell[i]).isoformat()}"
                 if not ledger_late[i] else "the ledger's buy is later than its sell")


def _utc(times: pd.Series) -> np.ndarray:
    """Naive UTC datetime64 values (NaT where missing), cheap to compare."""
    return pd.to_datetime(times, utc=True, cache=False).dt.tz_convert(None).to_numpy()


def _total_pnl(view: AllocationView, reported: Decimal | None,
               metadata: dict[str, Any]) -> _Found:
    pnl, present = view.column("pnl_usd")
    units, fits = at_places(pnl, 8)
    bad_rows = view.matched & ~(present & fits)
    count, failing = _rows(view, bad_rows, lambda i: "PnL missing" if not present[i]
                           else f"PnL {view.frame['pnl_usd'].iat[i]} has more than 8 places")
    symbols, codes = np.unique(view.frame["symbol"].to_numpy(dtype=object).astype(str),
                               return_inverse=True)
    by_symbol = group_sums(np.where(view.matched & present & fits, codes, -1), units,
                           len(symbols))
    total = decimal_of(sum(by_symbol.tolist()), 8)
    metadata.update(total_pnl_usd=str(total), symbols=len(symbols))
    return _against_reported(total, reported, count, failing, metadata)


def _against_reported(total: Decimal, reported: Decimal | None, count: int,
                      failing: list[dict[str, Any]], metadata: dict[str, Any]) -> _Found:
    """The matches' PnL against the total the version's log reports: one failing row more
    when they differ."""
    if reported is not None:
        metadata["reported_total_pnl_usd"] = str(reported)
        if round_money(reported) != total:
            count += 1
            failing = [*failing, {"sell_order_id": None, "buy_order_id": None, "symbol": None,
                                  "detail": f"total PnL {total} != reported {reported}"}]
    return count, failing[:SHOWN_ROWS]


def _no_unmatched_sells(view: AllocationView) -> _Found:
    notes = view.frame["notes"] if "notes" in view.frame else pd.Series([None] * view.n)
    return _rows(view, ~view.matched, lambda i: notes.iat[i] or "unmatched")


def _references_exist(view: AllocationView) -> _Found:
    side = view.ledger["side"].to_numpy(dtype=object)
    symbol = view.ledger["symbol"].to_numpy(dtype=object)
    row_symbol = view.frame["symbol"].to_numpy(dtype=object)
    problems = []  # per side: 0 fine, 1 unknown id, 2 wrong side, 3 other symbol
    for which, at, present in (("sell", view.sell_at, np.ones(view.n, dtype=bool)),
                               ("buy", view.buy_at, view.matched)):
        known = at >= 0
        problem = np.select([~known, side[at] != which, symbol[at] != row_symbol], [1, 2, 3], 0)
        problems.append((which, np.where(present, problem, 0)))
    wrong = (problems[0][1] > 0) | (problems[1][1] > 0)
    words = {1: "{0} not in the ledger", 2: "{0} is not a {0} in the ledger",
             3: "{0} is another symbol in the ledger"}
    return _rows(view, wrong, lambda i: "; ".join(
        words[p[i]].format(which) for which, p in problems if p[i]))
