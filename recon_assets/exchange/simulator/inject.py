"""Fills as Coinbase really sends them, derived deterministically from the loaded ones.

``--inject`` adds what a clean fills file lacks but the real exchange serves: ``reversals``
(a ``REVERSAL`` entry for a fill: same ``trade_id`` and values, its own ``entry_id``, sequenced
a second later), ``perpetuals`` (fills of ``<BASE>-PERP-INTX`` orders), ``nanoseconds``
(``trade_time`` with nine fractional digits, as in ``2023-01-18T01:37:38.091377090Z``) and
``late`` (fills of new orders whose ``sequence_timestamp`` is an hour after every loaded fill
while their ``trade_time`` is old; they appear only once a first listing has completed). About
one fill in :data:`EVERY` is picked for each, by a generator seeded with ``--seed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable, Sequence

from recon_assets.exchange.simulator.book import parse_rfc3339

INJECTIONS = ("reversals", "perpetuals", "nanoseconds", "late")
EVERY = 25
Fill = dict[str, Any]


@dataclass(frozen=True)
class Injected:
    """The fills to serve from the start, and the late ones held back for after a listing."""

    served: list[Fill]
    late: list[Fill]


def _stamp(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _picked(fills: Sequence[Fill], kind: str, seed: int | None) -> list[int]:
    """Indexes of about one fill in :data:`EVERY` (at least one), the same for the same seed."""
    rng = random.Random(f"{seed}:{kind}")
    return sorted(rng.sample(range(len(fills)), max(1, len(fills) // EVERY)))


def _reversal(fill: Fill, n: int) -> Fill:
    later = parse_rfc3339(fill["sequence_timestamp"]) + timedelta(seconds=1)
    return {**fill, "entry_id": f"{fill['entry_id']}-reversal", "trade_type": "REVERSAL",
            "sequence_timestamp": _stamp(later)}


def _perpetual(fill: Fill, n: int) -> Fill:
    base = str(fill["product_id"]).split("-")[0]
    return {**fill, "entry_id": f"{fill['entry_id']}-perp", "trade_id": f"{fill['trade_id']}-perp",
            "order_id": f"{fill['order_id']}-perp", "product_id": f"{base}-PERP-INTX"}


def _late(fill: Fill, n: int, after: Any) -> Fill:
    return {**fill, "entry_id": f"{fill['entry_id']}-late", "trade_id": f"{fill['trade_id']}-late",
            "order_id": f"{fill['order_id']}-late",
            "sequence_timestamp": _stamp(after + timedelta(hours=1, seconds=n))}


def inject(fills: Iterable[Fill], kinds: Iterable[str], seed: int | None = None) -> Injected:
    """The loaded ``fills`` with the ``kinds`` of :data:`INJECTIONS` added or applied."""
    fills = [dict(f) for f in fills]
    kinds = set(kinds)
    unknown = kinds - set(INJECTIONS)
    if unknown:
        raise ValueError(f"unknown injection {sorted(unknown)[0]!r} "
                         f"(want any of {', '.join(INJECTIONS)})")
    if not fills or not kinds:
        return Injected(fills, [])
    base = list(fills)
    if "nanoseconds" in kinds:
        rng = random.Random(f"{seed}:nanoseconds:digits")
        for i in _picked(base, "nanoseconds", seed):
            moment = parse_rfc3339(fills[i]["trade_time"])
            fills[i]["trade_time"] = f"{_stamp(moment)[:-1]}{rng.randint(1, 999):03d}Z"
    added: list[Fill] = []
    for kind, derive in (("reversals", _reversal), ("perpetuals", _perpetual)):
        if kind in kinds:
            added += [derive(fills[i], n) for n, i in enumerate(_picked(base, kind, seed))]
    late: list[Fill] = []
    if "late" in kinds:
        last = max(parse_rfc3339(f["sequence_timestamp"]) for f in fills + added)
        late = [_late(fills[i], n, last) for n, i in enumerate(_picked(base, "late", seed))]
    return Injected(fills + added, late)
