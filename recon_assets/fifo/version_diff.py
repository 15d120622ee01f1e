"""What changed between two FIFO versions, and which ledger orders made it change.

Versions are immutable, so after a backfill the question is never "what is the PnL now" but
"what moved, and why": which sells got other buy lots, which sells were unmatched and are now
covered (or the reverse), how realized PnL moved per symbol, and which orders appeared. Pure:
two allocation frames in (``fifo_allocations`` rows, money as ``Decimal`` objects or pyarrow
decimals), a frozen :class:`VersionDiff` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

import numpy as np
import pandas as pd

from recon_assets.money import EXACT, decimal_str, to_decimal

_ZERO = Decimal(0)
#: What identifies one piece of a sell in both versions (an unmatched piece has no buy).
_PAIR = ["sell_order_id", "buy_key"]
#: The values of a piece that, when different, mean the sell's allocation changed.
_VALUES = ["allocated_size", "cost_basis_usd", "net_proceeds_usd", "pnl_usd"]


@dataclass(frozen=True)
class Lot:
    """One piece of a sell: ``size`` from buy ``buy_order_id`` (``None``: the unmatched part)."""

    buy_order_id: str | None
    size: Decimal


@dataclass(frozen=True)
class SellChange:
    """A sell in both versions whose pieces differ; PnL is of its matched pieces."""

    sell_order_id: str
    symbol: str
    old_lots: tuple[Lot, ...]
    new_lots: tuple[Lot, ...]
    pnl_before: Decimal
    pnl_after: Decimal

    @property
    def pnl_delta(self) -> Decimal:
        return EXACT.subtract(self.pnl_after, self.pnl_before)


@dataclass(frozen=True)
class SymbolPnl:
    """Realized PnL of one symbol (sum of matched ``pnl_usd``) in each version."""

    symbol: str
    before: Decimal
    after: Decimal

    @property
    def delta(self) -> Decimal:
        return EXACT.subtract(self.after, self.before)


@dataclass(frozen=True)
class VersionDiff:
    """Old vs new version. Sell id lists are sorted; ``symbols`` covers both versions.

    ``newly_matched``: sells of both versions unmatched (in part) before and fully matched
    now. ``newly_unmatched``: sells with an unmatched part now that had none before, including
    sells the old version did not have. ``causing_orders``: order ids in the new version's
    rows but not the old one's (backfilled or new orders). ``dropped_orders``: ids in the old
    rows only (orders gone from the ledger, or buys no sell reaches any more because an
    older backfilled buy covers their sells).
    """

    old_version: int | None
    new_version: int | None
    symbols: tuple[SymbolPnl, ...]
    changed_sells: tuple[SellChange, ...]
    newly_matched: tuple[str, ...]
    newly_unmatched: tuple[str, ...]
    added_sells: tuple[str, ...]
    removed_sells: tuple[str, ...]
    causing_orders: tuple[str, ...]
    dropped_orders: tuple[str, ...]

    @property
    def pnl_before(self) -> Decimal:
        return _pnl_sum(s.before for s in self.symbols)

    @property
    def pnl_after(self) -> Decimal:
        return _pnl_sum(s.after for s in self.symbols)

    @property
    def pnl_delta(self) -> Decimal:
        """The total delta; it equals the sum of the per-symbol deltas exactly."""
        return EXACT.subtract(self.pnl_after, self.pnl_before)

    @property
    def is_empty(self) -> bool:
        return not (self.changed_sells or self.added_sells or self.removed_sells
                    or self.causing_orders or self.dropped_orders)


def diff_versions(old: pd.DataFrame, new: pd.DataFrame,
                  ledger_changes: set[str] | None = None) -> VersionDiff:
    """Compare two versions' allocation rows (see :class:`VersionDiff` for what each part is).

    Pieces are compared by (sell, buy) with their size and money, in one vectorized join, so a
    million-row version is cheap; only the changed sells are looked at row by row.
    ``ledger_changes`` (e.g. the ids a backfill applied) limits the causing and dropped orders
    to those ids: versions computed an hour apart also differ by the bot's new orders.
    """
    a, b = _pieces(old), _pieces(new)
    joined = a.merge(b, on=_PAIR, how="outer", suffixes=("_old", "_new"), indicator=True)
    both_sells = set(a["sell_order_id"]) & set(b["sell_order_id"])
    differs = (joined["_merge"] != "both").to_numpy().copy()
    for col in _VALUES:
        differs |= np.array([x != y for x, y in zip(joined[f"{col}_old"], joined[f"{col}_new"])],
                            dtype=bool)
    changed = sorted(set(joined.loc[differs, "sell_order_id"]) & both_sells)
    unmatched_old = set(a.loc[a["buy_key"] == "", "sell_order_id"])
    unmatched_new = set(b.loc[b["buy_key"] == "", "sell_order_id"])
    old_ids, new_ids = _order_ids(a), _order_ids(b)
    causing, dropped = new_ids - old_ids, old_ids - new_ids
    if ledger_changes is not None:
        causing, dropped = causing & set(ledger_changes), dropped & set(ledger_changes)
    return VersionDiff(
        old_version=_version(old), new_version=_version(new),
        symbols=_symbol_pnl(a, b),
        changed_sells=_sell_changes(a, b, changed),
        newly_matched=tuple(sorted((unmatched_old - unmatched_new) & both_sells)),
        newly_unmatched=tuple(sorted(unmatched_new - unmatched_old)),
        added_sells=tuple(sorted(set(b["sell_order_id"]) - set(a["sell_order_id"]))),
        removed_sells=tuple(sorted(set(a["sell_order_id"]) - set(b["sell_order_id"]))),
        causing_orders=tuple(sorted(causing)), dropped_orders=tuple(sorted(dropped)))


def _pieces(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with exact Decimal values (``None`` where missing) and a join key for the buy."""
    out = pd.DataFrame({
        "sell_order_id": frame["sell_order_id"].astype(object).tolist(),
        "buy_key": ["" if _missing(v) else str(v) for v in frame["buy_order_id"].tolist()],
        "symbol": frame["symbol"].astype(object).tolist(),
    }, dtype=object)
    for col in _VALUES:
        out[col] = pd.Series([to_decimal(v) for v in frame[col].tolist()], dtype=object)
    return out


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _version(frame: pd.DataFrame) -> int | None:
    if "allocation_version" not in frame.columns or frame.empty:
        return None
    return int(frame["allocation_version"].iloc[0])


def _order_ids(pieces: pd.DataFrame) -> set[str]:
    return set(pieces["sell_order_id"]) | (set(pieces["buy_key"]) - {""})


def _pnl_sum(values: Iterable[Decimal | None]) -> Decimal:
    """Exact sum of the matched values (the context is wide enough for any ledger)."""
    total = _ZERO
    for value in values:
        if value is not None:
            total = EXACT.add(total, value)
    return total


def _symbol_pnl(a: pd.DataFrame, b: pd.DataFrame) -> tuple[SymbolPnl, ...]:
    before = {s: _pnl_sum(g) for s, g in a.groupby("symbol")["pnl_usd"]}
    after = {s: _pnl_sum(g) for s, g in b.groupby("symbol")["pnl_usd"]}
    return tuple(SymbolPnl(s, before.get(s, _ZERO), after.get(s, _ZERO))
                 for s in sorted(set(before) | set(after)))


def _sell_changes(a: pd.DataFrame, b: pd.DataFrame, sells: list[str]
                  ) -> tuple[SellChange, ...]:
    """Details of the changed sells only: grouped once, not one scan of the version per sell."""
    old = dict(iter(a[a["sell_order_id"].isin(sells)].groupby("sell_order_id", sort=False)))
    new = dict(iter(b[b["sell_order_id"].isin(sells)].groupby("sell_order_id", sort=False)))
    return tuple(SellChange(sell_order_id=sell, symbol=str(new[sell]["symbol"].iloc[0]),
                            old_lots=_lots(old[sell]), new_lots=_lots(new[sell]),
                            pnl_before=_pnl_sum(old[sell]["pnl_usd"]),
                            pnl_after=_pnl_sum(new[sell]["pnl_usd"]))
                 for sell in sells)


def _lots(rows: pd.DataFrame) -> tuple[Lot, ...]:
    return tuple(Lot(key or None, size) for key, size in
                 zip(rows["buy_key"], rows["allocated_size"]))


# -- presentation ---------------------------------------------------------------------------


def _lots_text(lots: tuple[Lot, ...]) -> str:
    return ", ".join(f"{lot.buy_order_id or 'UNMATCHED'} {decimal_str(lot.size)}"
                     for lot in lots) or "-"


def to_markdown(diff: VersionDiff, limit: int = 10) -> str:
    """A short summary for Dagster metadata: totals, per-symbol deltas, the first changes."""
    lines = [f"**Version {diff.old_version} -> {diff.new_version}**: realized PnL "
             f"{decimal_str(diff.pnl_before)} -> {decimal_str(diff.pnl_after)} USD "
             f"(delta {decimal_str(diff.pnl_delta)})", "",
             f"{len(diff.changed_sells)} sells changed, {len(diff.newly_matched)} newly "
             f"matched, {len(diff.newly_unmatched)} newly unmatched, {len(diff.added_sells)} "
             f"added, {len(diff.removed_sells)} removed.", ""]
    moved = [s for s in diff.symbols if s.delta != 0]
    if moved:
        lines += ["| symbol | before | after | delta |", "|---|---|---|---|"]
        lines += [f"| {s.symbol} | {decimal_str(s.before)} | {decimal_str(s.after)} | "
                  f"{decimal_str(s.delta)} |" for s in moved]
        lines.append("")
    if diff.changed_sells:
        lines += ["| sell | symbol | old lots | new lots | PnL delta |", "|---|---|---|---|---|"]
        lines += [f"| {c.sell_order_id} | {c.symbol} | {_lots_text(c.old_lots)} | "
                  f"{_lots_text(c.new_lots)} | {decimal_str(c.pnl_delta)} |"
                  for c in diff.changed_sells[:limit]]
        if len(diff.changed_sells) > limit:
            lines.append(f"\n_{len(diff.changed_sells) - limit} more changed sells_")
        lines.append("")
    if diff.causing_orders:
        shown = ", ".join(diff.causing_orders[:limit])
        more = f" and {len(diff.causing_orders) - limit} more" if len(
            diff.causing_orders) > limit else ""
        lines.append(f"Caused by orders new in version {diff.new_version}: {shown}{more}")
    return "\n".join(lines).rstrip()


def to_json(diff: VersionDiff, limit: int | None = None) -> dict[str, Any]:
    """The diff as JSON-native values, numbers as decimal strings.

    ``limit`` cuts each list (the ``counts`` stay exact and ``truncated`` says so), for
    metadata that must stay small.
    """
    def cut(items: tuple) -> list:
        return list(items if limit is None else items[:limit])

    def lots(items: tuple[Lot, ...]) -> list[dict[str, Any]]:
        return [{"buy_order_id": lot.buy_order_id, "size": decimal_str(lot.size)}
                for lot in items]

    lists = {"changed_sells": diff.changed_sells, "newly_matched": diff.newly_matched,
             "newly_unmatched": diff.newly_unmatched, "added_sells": diff.added_sells,
             "removed_sells": diff.removed_sells, "causing_orders": diff.causing_orders,
             "dropped_orders": diff.dropped_orders}
    return {
        "old_version": diff.old_version, "new_version": diff.new_version,
        "pnl_before": decimal_str(diff.pnl_before), "pnl_after": decimal_str(diff.pnl_after),
        "pnl_delta": decimal_str(diff.pnl_delta),
        "symbols": [{"symbol": s.symbol, "before": decimal_str(s.before),
                     "after": decimal_str(s.after), "delta": decimal_str(s.delta)}
                    for s in diff.symbols],
        "changed_sells": [{"sell_order_id": c.sell_order_id, "symbol": c.symbol,
                           "old_lots": lots(c.old_lots), "new_lots": lots(c.new_lots),
                           "pnl_before": decimal_str(c.pnl_before),
                           "pnl_after": decimal_str(c.pnl_after),
                           "pnl_delta": decimal_str(c.pnl_delta)}
                          for c in cut(diff.changed_sells)],
        **{name: cut(items) for name, items in lists.items() if name != "changed_sells"},
        "counts": {name: len(items) for name, items in lists.items()},
        "truncated": limit is not None and any(len(i) > limit for i in lists.values()),
    }
