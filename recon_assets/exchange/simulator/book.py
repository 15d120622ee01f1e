"""The simulator's fills: validated once on the way in, served exactly as given.

Fills are kept as the JSON objects the real API returns (money as strings), next to the few
parsed values the server filters and sorts on. Each fill gets an insertion index that never
changes, so paging stays stable while :meth:`FillBook.add` appends fills mid-sync and even
byte-identical duplicates (which the deep audit must be able to see) stay distinct.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from recon_assets.errors import BadRowError, ConfigError
from recon_assets.exchange.models import FILL_COLUMNS
from recon_assets.money import EXACT, NotADecimal, to_decimal

SIDES = ("BUY", "SELL")


@dataclass(frozen=True)
class StoredFill:
    """One fill as served, with the values the server needs already parsed."""

    index: int
    fill: dict[str, Any]
    trade_time: datetime
    sequence_time: datetime
    price: Decimal
    size: Decimal
    commission: Decimal

    @property
    def base_size(self) -> Decimal:
        """Size in base units; a ``size_in_quote`` fill states its size in quote currency."""
        return EXACT.divide(self.size, self.price) if self.fill["size_in_quote"] else self.size


def parse_rfc3339(text: str) -> datetime:
    """An RFC3339 timestamp as an aware UTC datetime; a value without offset is rejected."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value.astimezone(timezone.utc)


Problem = tuple[str, str, str]  # (row id, field, message), as BadRowError reports them


def _parse(index: int, fill: dict[str, Any]) -> tuple[StoredFill | None, list[Problem]]:
    row_id = str(fill.get("entry_id") or fill.get("trade_id") or f"line {index + 1}")
    problems = [(row_id, name, "missing") for name in FILL_COLUMNS if name not in fill]
    if problems:
        return None, problems
    parsed: dict[str, Any] = {}
    for name in ("trade_time", "sequence_timestamp"):
        try:
            parsed[name] = parse_rfc3339(str(fill[name]))
        except ValueError:
            problems.append((row_id, name, f"not an RFC3339 time: {fill[name]!r}"))
    for name in ("price", "size", "commission"):
        try:
            parsed[name] = to_decimal(fill[name] if isinstance(fill[name], str) else None)
        except NotADecimal:
            parsed[name] = None
        if parsed[name] is None:
            problems.append((row_id, name, f"not a decimal string: {fill[name]!r}"))
    if parsed.get("price") is not None and parsed["price"] <= 0:
        problems.append((row_id, "price", "must be positive"))
    if fill["side"] not in SIDES:
        problems.append((row_id, "side", f"must be BUY or SELL: {fill['side']!r}"))
    if not isinstance(fill["size_in_quote"], bool):
        problems.append((row_id, "size_in_quote", "must be a JSON boolean"))
    if problems:
        return None, problems
    stored = StoredFill(index, dict(fill), parsed["trade_time"], parsed["sequence_timestamp"],
                        parsed["price"], parsed["size"], parsed["commission"])
    return stored, []


class FillBook:
    """All fills the simulator knows, safe to read and extend from many request threads."""

    def __init__(self, fills: Iterable[dict[str, Any]] = ()):
        self._lock = threading.Lock()
        self._fills: tuple[StoredFill, ...] = ()
        self.version = 0
        self.add(fills)

    def add(self, fills: Iterable[dict[str, Any]]) -> None:
        """Validate and append fills; all or none are added, with every problem reported."""
        with self._lock:
            start = len(self._fills)
            added: list[StoredFill] = []
            problems: list[Problem] = []
            for offset, fill in enumerate(fills):
                if not isinstance(fill, dict):
                    problems.append((f"fill {start + offset + 1}", "*", "not a JSON object"))
                    continue
                stored, errors = _parse(start + offset, fill)
                problems.extend(errors)
                if stored is not None:
                    added.append(stored)
            if problems:
                raise BadRowError("fills", problems)
            self._fills = self._fills + tuple(added)
            self.version += 1

    def snapshot(self) -> tuple[int, tuple[StoredFill, ...]]:
        """The current version and fills; the tuple is immutable, so readers need no lock."""
        with self._lock:
            return self.version, self._fills


def load_fills_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read one Coinbase ``Fill`` JSON object per line; blank lines are skipped."""
    fills: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    fills.append(json.loads(line))
    except OSError as exc:
        raise ConfigError(f"cannot read fills file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"fills file {path} line {number}: not JSON ({exc.msg})") from None
    return fills


def write_fills_jsonl(path: Path, fills: Iterable[dict[str, Any]]) -> None:
    """Write fills one JSON object per line, the format :func:`load_fills_jsonl` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for fill in fills:
            handle.write(json.dumps(fill, separators=(",", ":")) + "\n")
