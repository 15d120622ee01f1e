"""Validating a stored version: every rule of :mod:`recon_assets.fifo.rules` over its rows and
the ledger, judging again only what was not judged before.

FIFO never crosses symbols, and neither do the rules while no order id is under two symbols:
a symbol's results depend on its rows of the version and its orders in the ledger alone. So a
symbol whose rows (by their digest) and orders (by their fingerprint) were judged before, as a
symbol a new version copied from the one before or a version validated again, is not read
again; its recorded results are combined with the others'
(:mod:`recon_assets.ledger.check_results`). A symbol a fanned-out version computed was
judged by its own step, where its allocations and orders were in memory
(``recon_assets.fifo.service.allocate_symbols`` with ``judge``), and is found here the same
way. Everything is read in one snapshot, so the digests, the fingerprints and the rows
judged are of one moment. Where that cannot hold (not PostgreSQL 14+, an order id under two
symbols, skipped rows, or a reference to another symbol's order, which only the whole
ledger words right) the whole version is read and judged as one, as before.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import Connection

from recon_assets.fifo.rules import (ALLOCATION_INPUTS, RULES_REVISION, RuleResult,
                                     combine_recorded, recorded_form, validate_allocations)
from recon_assets.fifo.service import load_version
from recon_assets.ledger import check_results, versions
from recon_assets.ledger.fingerprint import LedgerFingerprint
from recon_assets.ledger.store import LedgerStore
from recon_assets.trades import empty_trades

#: Rows of the version read and judged at once (with the orders of the same symbols).
_BATCH_ROWS = 250_000


def validate_version(store: LedgerStore, info: versions.VersionInfo, *, strict: bool = False,
                     log: Callable[[str], None] = lambda _message: None
                     ) -> tuple[list[RuleResult], LedgerFingerprint]:
    """Every rule's result for version ``info``, and the ledger's fingerprint as judged."""
    with store.snapshot() as conn:
        with store.fingerprint_alongside(conn) as fingerprint:  # both scans on the server
            digests = None if info.skipped_rows else check_results.symbol_digests(
                conn, info.version, ALLOCATION_INPUTS)
            current = fingerprint()
        judged = None
        if digests is not None and not store.ids_seen_twice(conn):
            judged = _by_symbol(store, conn, info, current, digests)
        if judged is None:
            allocations, trades = load_version(store, info, conn)
            return validate_allocations(allocations, trades,
                                        reported_total_pnl=info.total_pnl_usd,
                                        strict=strict), current
    per_symbol, fresh = judged
    with store.begin() as conn:
        check_results.record(conn, fresh, RULES_REVISION)
    log(f"version {info.version}: {len(per_symbol) - len(fresh)} of {len(per_symbol)} "
        "symbols judged before (the same rows over the same orders), "
        f"{len(fresh)} read and judged now")
    return combine_recorded(per_symbol, reported_total_pnl=info.total_pnl_usd,
                            strict=strict), current


def _by_symbol(store: LedgerStore, conn: Connection, info: versions.VersionInfo,
               current: LedgerFingerprint, digests: dict[str, str]
               ) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str, Any]]] | None:
    """Each symbol's results, in symbol order, and the ones judged now (to record); None
    when a symbol's rows name another symbol's order (the whole version is judged then)."""
    scope = set(info.symbols) if info.symbols else set(current.by_symbol)
    symbols = sorted(set(digests) | scope)
    # A symbol outside the version's scope is judged without ledger orders, as the whole
    # version's validation reads only the scope's.
    keys = {s: (digests.get(s, check_results.NO_ROWS),
                current.by_symbol.get(s, "") if s in scope else "")
            for s in symbols}
    known = check_results.recorded(conn, keys, RULES_REVISION)
    fresh: dict[str, tuple[str, str, Any]] = {}
    for batch in _batches([s for s in symbols if s not in known], keys):
        allocations = versions.read_allocations(conn, info.version, batch, columnar=True,
                                                columns=ALLOCATION_INPUTS)
        readable = [s for s in batch if s in scope]
        trades = (store.read_trades(symbols=readable, assume_zero_fees=True, conn=conn,
                                    columnar=True).trades
                  if readable else empty_trades())
        rows, orders = (frame.groupby("symbol").indices for frame in (allocations, trades))
        for s in batch:
            results = recorded_form(validate_allocations(
                allocations.take(rows.get(s, [])).reset_index(drop=True),
                trades.take(orders.get(s, [])).reset_index(drop=True), normalized=True))
            if results["references_exist"]["failing_count"]:
                return None
            fresh[s] = (*keys[s], results)
    return [known[s] if s in known else fresh[s][2] for s in symbols], fresh


def _batches(symbols: list[str], keys: dict[str, tuple[str, str]]) -> list[list[str]]:
    """The symbols in runs of about :data:`_BATCH_ROWS` rows of the version (a symbol alone
    when larger), so a version and its ledger are never all in memory at once."""
    batches: list[list[str]] = []
    rows = _BATCH_ROWS
    for s in symbols:
        size = check_results.digest_rows(keys[s][0])
        if not batches or rows + size > _BATCH_ROWS:
            batches.append([])
            rows = 0
        batches[-1].append(s)
        rows += size
    return batches
