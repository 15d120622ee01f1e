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

from recon_assets.fifo.columns import at_places, column_sums, common_places, exact
from recon_assets.money import EXACT, decimal_str, to_decimal

_ZERO = Decimal(0)
#: What identifies one piece of a sell in both versions (an unmatched piece has no buy).
_PAIR = ["sell_order_id", "buy_key"]
#: The values of a piece that, when different, mean the sell's allocation changed.
PIECE_VALUES = ["allocated_size", "cost_basis_usd", "net_proceeds_usd", "pnl_usd"]


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

    Pieces are compared by (sell, buy) on integer codes and their size and money as exact
    integers (:func:`recon_assets.fifo.columns.exact`), in one vectorized join, so a
    million-row version is cheap; only the changed sells are looked at row by row.
    ``ledger_changes`` (e.g. the ids a backfill applied) limits the causing and dropped orders
    to those ids: versions computed an hour apart also differ by the bot's new orders.
    """
    a, b = _pieces(old, new)
    joined = a.merge(b, on="pair", how="inner", suffixes=("_old", "_new"))
    differs = np.zeros(len(joined), dtype=bool)
    for col in PIECE_VALUES:
        differs |= ((joined[f"{col}_old"] != joined[f"{col}_new"]).to_numpy()
                    | (joined[f"{col}_has_old"] != joined[f"{col}_has_new"]).to_numpy())
    a_sells, b_sells = set(a["sell_order_id"]), set(b["sell_order_id"])
    both_sells = a_sells & b_sells
    moved = set(joined.loc[differs, "sell_order_id_old"])
    moved |= set(a.loc[~a["pair"].isin(b["pair"]), "sell_order_id"])
    moved |= set(b.loc[~b["pair"].isin(a["pair"]), "sell_order_id"])
    changed = sorted(moved & both_sells)
    unmatched_old = set(a.loc[a["buy_key"] == "", "sell_order_id"])
    unmatched_new = set(b.loc[b["buy_key"] == "", "sell_order_id"])
    old_ids, new_ids = _order_ids(a), _order_ids(b)
    causing, dropped = new_ids - old_ids, old_ids - new_ids
    if ledger_changes is not None:
        causing, dropped = causing & set(ledger_changes), dropped & set(ledger_changes)
    return VersionDiff(
        old_version=_version(old), new_version=_version(new),
        symbols=_symbol_pnl(old, new),
        changed_sells=_sell_changes(old, new, changed),
        newly_matched=tuple(sorted((unmatched_old - unmatched_new) & both_sells)),
        newly_unmatched=tuple(sorted(unmatched_new - unmatched_old)),
        added_sells=tuple(sorted(b_sells - a_sells)),
        removed_sells=tuple(sorted(a_sells - b_sells)),
        causing_orders=tuple(sorted(causing)), dropped_orders=tuple(sorted(dropped)))


@dataclass(frozen=True)
class StoredDiff:
    """What the database finds between two stored versions (see
    :func:`recon_assets.ledger.versions.diff_in_database`), for :func:`diff_of_stored`:
    each version's PnL per symbol, the sells of both whose pieces differ, those sells' rows,
    and the id sets the diff reports (unsorted)."""

    pnl_by_symbol: dict[int, dict[str, Decimal]]
    changed_sells: list[str]
    changed_rows: dict[int, pd.DataFrame]
    newly_matched: list[str]
    newly_unmatched: list[str]
    added_sells: list[str]
    removed_sells: list[str]
    causing_orders: list[str]
    dropped_orders: list[str]


def diff_of_stored(stored: StoredDiff, old: int, new: int) -> VersionDiff:
    """The :class:`VersionDiff` of two stored versions that the database compared
    (:func:`recon_assets.ledger.versions.diff_in_database`): the same answer as
    :func:`diff_versions` on their rows."""
    before, after = stored.pnl_by_symbol[old], stored.pnl_by_symbol[new]
    changed = sorted(stored.changed_sells)
    return VersionDiff(
        old_version=old, new_version=new,
        symbols=tuple(SymbolPnl(s, before.get(s, _ZERO), after.get(s, _ZERO))
                      for s in sorted(set(before) | set(after))),
        changed_sells=_sell_changes(stored.changed_rows[old], stored.changed_rows[new],
                                    changed),
        newly_matched=tuple(sorted(stored.newly_matched)),
        newly_unmatched=tuple(sorted(stored.newly_unmatched)),
        added_sells=tuple(sorted(stored.added_sells)),
        removed_sells=tuple(sorted(stored.removed_sells)),
        causing_orders=tuple(sorted(stored.causing_orders)),
        dropped_orders=tuple(sorted(stored.dropped_orders)))


def _pieces(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both versions' rows as a (sell, buy) code ``pair`` shared by the two, the ids, and
    each value of :data:`PIECE_VALUES` as an integer at the places of both versions' column, with
    whether it is present."""
    sells = pd.factorize(np.concatenate([_text(old["sell_order_id"]),
                                         _text(new["sell_order_id"])]))[0]
    buys = pd.factorize(np.concatenate([_text(old["buy_order_id"]),
                                        _text(new["buy_order_id"])]))[0]
    pair = sells.astype(np.int64) * (int(buys.max(initial=0)) + 1) + buys
    values = {}
    for col in PIECE_VALUES:
        parts = [exact(frame[col]) for frame in (old, new)]
        places = common_places(*parts)
        values[col] = [(at_places(scaled, places)[0], present) for scaled, present in parts]
    out = []
    for i, frame in enumerate((old, new)):
        rows = slice(0, len(old)) if i == 0 else slice(len(old), None)
        piece = pd.DataFrame({"pair": pair[rows],
                              "sell_order_id": pd.Series(_text(frame["sell_order_id"]),
                                                         dtype=object),
                              "buy_key": pd.Series(_text(frame["buy_order_id"]), dtype=object)})
        for col in PIECE_VALUES:
            piece[col], piece[f"{col}_has"] = values[col][i]
        out.append(piece)
    return out[0], out[1]


def _text(ids: pd.Series) -> np.ndarray:
    """Order ids as objects, ``""`` where missing (the unmatched piece has no buy)."""
    return np.where(ids.notna().to_numpy(), ids.astype(object).to_numpy(), "")


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
    def per_symbol(frame: pd.DataFrame) -> dict[str, Decimal]:
        codes, names = pd.factorize(frame["symbol"].astype(object), sort=True)
        sums = column_sums(codes, frame["pnl_usd"], len(names))
        return {str(s): _ZERO if total is None else total for s, total in zip(names, sums)}

    before, after = per_symbol(a), per_symbol(b)
    return tuple(SymbolPnl(s, before.get(s, _ZERO), after.get(s, _ZERO))
                 for s in sorted(set(before) | set(after)))


def _sell_changes(a: pd.DataFrame, b: pd.DataFrame, sells: list[str]
                  ) -> tuple[SellChange, ...]:
    """Details of the changed sells only: their rows taken once, as Decimals, then grouped
    (not one scan of the version per sell)."""
    old = dict(iter(_rows_of(a, sells).groupby("sell_order_id", sort=False)))
    new = dict(iter(_rows_of(b, sells).groupby("sell_order_id", sort=False)))
    return tuple(SellChange(sell_order_id=sell, symbol=str(new[sell]["symbol"].iloc[0]),
                            old_lots=_lots(old[sell]), new_lots=_lots(new[sell]),
                            pnl_before=_pnl_sum(old[sell]["pnl_usd"]),
                            pnl_after=_pnl_sum(new[sell]["pnl_usd"]))
                 for sell in sells)


def _rows_of(frame: pd.DataFrame, sells: list[str]) -> pd.DataFrame:
    """The rows of these sells: ids as text (``buy_key`` ``""`` for the unmatched piece)
    and sizes and PnL as Decimals (``None`` where missing)."""
    rows = frame[frame["sell_order_id"].isin(sells).to_numpy()]
    return pd.DataFrame({
        "sell_order_id": rows["sell_order_id"].astype(object).to_numpy(),
        "buy_key": _text(rows["buy_order_id"]),
        "symbol": rows["symbol"].astype(object).to_numpy(),
        "allocated_size": [to_decimal(v) for v in _objects(rows["allocated_size"])],
        "pnl_usd": [to_decimal(v) for v in _objects(rows["pnl_usd"])],
    })


def _objects(values: pd.Series) -> list[Any]:
    """A column's values with ``None`` for every missing one (NaN, NA or None)."""
    return [None if missing else v for v, missing in zip(values.tolist(), values.isna())]


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
