"""Deciding whether the ledger needs a new FIFO version, and which number it gets.

Shared by the CLI, the ledger sensor and the schedules, so all of them agree on the rule
(SPEC section 3): a new version only when the ledger changed since the latest version of the
same scope, or when forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from recon_assets.errors import ConfigError
from recon_assets.ledger import versions
from recon_assets.ledger.store import LedgerStore


@dataclass(frozen=True)
class NewVersionPlan:
    """``version`` is the version to materialize: a new number when something changed (or
    ``force``), else the stored version ``unchanged_since`` that already reflects the ledger."""

    version: int
    unchanged_since: versions.VersionInfo | None


def scope_symbols(store: LedgerStore, symbols: Sequence[str] | None = ()
                  ) -> tuple[tuple[str, ...], list[tuple[str, str, str]]]:
    """The symbols a computation covers (all of the ledger's when none are asked for) and
    the rows no per-symbol step can judge (reported only for a whole-ledger computation).

    A requested symbol the ledger has no order for is refused: a typo would otherwise write
    an empty version that the checks then hold against every symbol.
    """
    present, problems = store.symbol_census()
    wanted = set(symbols or ())
    unknown = sorted(wanted - set(present))
    if unknown:
        raise ConfigError(f"no orders for {', '.join(map(repr, unknown))} in trade_records "
                          f"(symbols there: {', '.join(sorted(present)) or 'none'}); "
                          "nothing computed")
    if wanted:
        return tuple(s for s in present if s in wanted), []
    return tuple(present), problems


def plan_new_version(store: LedgerStore, *, symbols: Sequence[str] | None = (),
                     force: bool = False) -> NewVersionPlan:
    """Whether a new version is needed, and its number.

    The scope is the symbol list ``fifo_computation_log`` records for a version. The newest
    version of this scope is reused when its fingerprint equals the ledger's now; an older
    version with an equal fingerprint is not (the ledger changed and came back, and the
    newest version, which reports read, does not reflect it).
    """
    chosen, _problems = scope_symbols(store, symbols)
    fingerprint = str(store.fingerprint())
    with store.connect() as conn:
        known = versions.list_versions(conn)
        number = versions.next_version(conn)
    if not force:
        same_scope = [v for v in known if sorted(v.symbols) == sorted(chosen)]
        if same_scope and same_scope[-1].ledger_fingerprint == fingerprint:
            return NewVersionPlan(same_scope[-1].version, same_scope[-1])
    return NewVersionPlan(number, None)
