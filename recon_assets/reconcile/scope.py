"""What a reconciliation may judge: the symbols asked for, and the span of order times the
fills archive covers (the rest of the ledger is neither proven right nor wrong by it)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from sqlalchemy import func, select

from recon_assets.errors import ConfigError
from recon_assets.ledger.schema import exchange_fills
from recon_assets.ledger.store import LedgerStore
from recon_assets.reconcile.tiers import Window


def archive_span(store: LedgerStore) -> Window | None:
    """First and last ``trade_time`` of the whole fills archive (None when it is empty).

    The archive is all tiers 2 and 3 know of the exchange: before its first fill (exchange
    retention, a recent install) an order the ledger has proves nothing, so it is not judged.
    """
    times = exchange_fills.c.trade_time
    with store.connect() as conn:
        first, last = conn.execute(select(func.min(times), func.max(times))).one()
    return None if first is None else (pd.Timestamp(first), pd.Timestamp(last))


def judged_ledger(ledger: pd.DataFrame, exchange: pd.DataFrame, window: Window | None
                  ) -> pd.DataFrame:
    """The ledger orders tiers 2 and 3 compare: those inside the archive's span, plus any
    the exchange has (its ledger time may sit just outside, e.g. placed before the fill)."""
    if window is None:
        return ledger.iloc[0:0]
    times = pd.to_datetime(ledger["order_time"], utc=True)
    inside = (times >= window[0]) & (times <= window[1])
    return ledger[inside | ledger["order_id"].isin(exchange["order_id"])]


def span_text(window: Window) -> str:
    """A window as people read it in reports."""
    return f"{window[0].isoformat()} to {window[1].isoformat()}"


def check_symbols(store: LedgerStore, symbols: Sequence[str]) -> None:
    """Refuse (ConfigError, exit 2) a requested symbol that neither the ledger nor the fills
    archive has: a typo would otherwise reconcile nothing and report a clean run."""
    if not symbols:
        return
    ledger_symbols, _problems = store.symbol_census()
    with store.connect() as conn:
        archived = set(conn.execute(select(exchange_fills.c.product_id).distinct()).scalars())
    known = set(ledger_symbols) | archived
    unknown = sorted(set(symbols) - known)
    if unknown:
        raise ConfigError(f"no orders or fills for {', '.join(map(repr, unknown))} in the "
                          f"ledger or the fills archive (symbols there: "
                          f"{', '.join(sorted(known)) or 'none'}); nothing reconciled")
