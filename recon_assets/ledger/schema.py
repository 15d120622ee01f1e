"""Table definitions for the ledger, on SQLite and PostgreSQL.

``trade_records`` is the bot's table: when it already exists it is read as it is (BotTrader
stores money as double precision) and never altered; these definitions only create it where it
is missing. Every other table belongs to recon-assets and is described in README.md.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, Index, Integer,
                        LargeBinary, MetaData, Numeric, Table, Text, UniqueConstraint, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from recon_assets.money import to_decimal


class ExactDecimal(TypeDecorator):
    """Exact decimals: unconstrained NUMERIC on PostgreSQL, plain-text decimals on SQLite.

    SQLite has no decimal type (SQLAlchemy's Numeric would go through REAL, a binary float), so
    values are stored as text there; reading accepts whatever a loosely typed column holds and
    converts it with :func:`recon_assets.money.to_decimal`.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        dec = to_decimal(value)
        if dec is None:
            return None
        return dec if dialect.name == "postgresql" else format(dec, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return to_decimal(value)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive, as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JsonType = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

trade_records = Table(
    "trade_records", metadata,
    Column("order_id", Text, primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("order_time", UtcDateTime, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("size", ExactDecimal, nullable=False),
    Column("total_fees_usd", ExactDecimal),
    Column("status", Text),
    Column("source", Text),
    Column("trigger", JsonType),
    Column("ingest_via", Text),
    Column("last_reconciled_at", UtcDateTime),
    Column("last_reconciled_via", Text),
)

fifo_allocations = Table(
    "fifo_allocations", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("sell_order_id", Text, nullable=False),
    Column("buy_order_id", Text),
    Column("symbol", Text, nullable=False),
    Column("allocated_size", ExactDecimal, nullable=False),
    Column("buy_price", ExactDecimal),
    Column("sell_price", ExactDecimal, nullable=False),
    Column("buy_fees_per_unit", ExactDecimal),
    Column("sell_fees_per_unit", ExactDecimal, nullable=False),
    Column("cost_basis_usd", ExactDecimal),
    Column("proceeds_usd", ExactDecimal, nullable=False),
    Column("net_proceeds_usd", ExactDecimal, nullable=False),
    Column("pnl_usd", ExactDecimal),
    Column("buy_time", UtcDateTime),
    Column("sell_time", UtcDateTime, nullable=False),
    Column("allocation_time", UtcDateTime, nullable=False),
    Column("allocation_version", Integer, nullable=False),
    Column("allocation_batch_id", Text, nullable=False),
    Column("notes", Text),
    # version first: a new version's entries go to the end of the index (migration 0004)
    UniqueConstraint("allocation_version", "sell_order_id", "buy_order_id",
                     name="uq_fifo_allocations_version_sell_buy"),
    Index("ix_fifo_allocations_version_symbol", "allocation_version", "symbol"),
)

fifo_computation_log = Table(
    "fifo_computation_log", metadata,
    Column("allocation_version", Integer, primary_key=True, autoincrement=False),
    Column("allocation_batch_id", Text, nullable=False),
    Column("status", Text, nullable=False),  # computed | validated | failed
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("duration_ms", Integer),
    Column("trade_count", Integer, nullable=False),
    Column("allocation_count", Integer, nullable=False),
    Column("unmatched_count", Integer, nullable=False),
    Column("symbols", JsonType),
    Column("total_pnl_usd", ExactDecimal),
    Column("ledger_fingerprint", Text),
    Column("skipped_rows", JsonType),
    Column("notes", Text),
    # What each symbol contributed, and from which ledger (fifo.service.SymbolRecord); a later
    # version copies the rows of the symbols that did not change (migration 0003).
    Column("per_symbol", JsonType),
)

manual_review_queue = Table(
    "manual_review_queue", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("sell_order_id", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("allocation_version", Integer, nullable=False),
    Column("sell_time", UtcDateTime, nullable=False),
    Column("sell_size", ExactDecimal, nullable=False),
    Column("unmatched_size", ExactDecimal, nullable=False),
    Column("inventory_at_sell", ExactDecimal, nullable=False),
    Column("status", Text, nullable=False, default="open"),  # open | resolved
    Column("created_at", UtcDateTime, nullable=False),
    Column("notes", Text),
    UniqueConstraint("sell_order_id", "allocation_version",
                     name="uq_manual_review_queue_sell_version"),
)

def _fill_values() -> list[Column]:
    """The columns of one archived Coinbase entry after its ``trade_id`` (new objects for
    each table: a Column belongs to one table)."""
    return [
        Column("entry_id", Text),
        Column("order_id", Text, nullable=False),
        Column("product_id", Text, nullable=False),
        Column("side", Text, nullable=False),
        Column("trade_time", UtcDateTime, nullable=False),
        Column("sequence_timestamp", UtcDateTime, nullable=False),
        Column("price", ExactDecimal, nullable=False),
        Column("size", ExactDecimal, nullable=False),
        Column("commission", ExactDecimal, nullable=False),
        Column("size_in_quote", Boolean, nullable=False),
        Column("trade_type", Text),
        Column("liquidity_indicator", Text),
    ]


exchange_fills = Table(
    "exchange_fills", metadata,
    Column("trade_id", Text, primary_key=True),
    *_fill_values(),
    Column("fetched_at", UtcDateTime, nullable=False),
    Index("ix_exchange_fills_order_id", "order_id"),
    Index("ix_exchange_fills_product_time", "product_id", "trade_time"),
)

#: Entries whose ``trade_type`` is not ``FILL`` (REVERSAL, CORRECTION, SYNTHETIC): kept for
#: review, never counted. A reversal may share its fill's ``trade_id``, so they are keyed on
#: ``entry_key``: the ``entry_id``, or ``TRADE_TYPE:trade_id`` when none was sent.
exchange_fill_entries = Table(
    "exchange_fill_entries", metadata,
    Column("entry_key", Text, primary_key=True),
    Column("trade_id", Text, nullable=False),
    *_fill_values(),
    Column("fetched_at", UtcDateTime, nullable=False),
    Index("ix_exchange_fill_entries_order_id", "order_id"),
)

#: Later reports of an archived ``trade_id`` with other values: the archive keeps the first
#: seen, this table every differing version (once per ``digest`` of its values) and when.
exchange_fill_conflicts = Table(
    "exchange_fill_conflicts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("trade_id", Text, nullable=False),
    *_fill_values(),
    Column("digest", Text, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    UniqueConstraint("trade_id", "digest", name="uq_exchange_fill_conflicts_trade_digest"),
)

sync_state = Table(
    "sync_state", metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: The statuses of a backfill request still in review or waiting to be applied.
OPEN_REQUEST_SQL = "status IN ('pending', 'approved')"

backfill_requests = Table(
    "backfill_requests", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("order_id", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("order_time", UtcDateTime, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("size", ExactDecimal, nullable=False),
    Column("total_fees_usd", ExactDecimal, nullable=False),
    Column("tier", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending | approved | rejected | applied
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("decided_at", UtcDateTime),
    Column("decided_by", Text),
    Column("applied_at", UtcDateTime),
    Column("applied_by", Text),
    Column("reconciliation_run_id", Integer),
    # An order may be requested again after it was applied and went missing, but never has
    # two open requests (migration 0002_backfill_requests_reopen).
    Index("ix_backfill_requests_order_id", "order_id"),
    Index("uq_backfill_requests_open_order", "order_id", unique=True,
          sqlite_where=text(OPEN_REQUEST_SQL), postgresql_where=text(OPEN_REQUEST_SQL)),
)

reconciliation_runs = Table(
    "reconciliation_runs", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("tier", Integer, nullable=False),
    Column("allocation_version", Integer),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("status", Text, nullable=False),  # running | clean | findings | failed
    Column("window_start", UtcDateTime),
    Column("window_end", UtcDateTime),
    Column("missing_count", Integer, nullable=False, default=0),
    Column("phantom_count", Integer, nullable=False, default=0),
    Column("mismatch_count", Integer, nullable=False, default=0),
    Column("duplicate_count", Integer, nullable=False, default=0),
    Column("unmatched_count", Integer, nullable=False, default=0),
    Column("exchange_requests", Integer),
    Column("log_path", Text),
    Column("summary", JsonType),
)

#: A fanned-out FIFO computation under way (one row per Dagster run): the plan every
#: per-symbol step reads, so steps on other hosts share nothing but this database.
fifo_staging_runs = Table(
    "fifo_staging_runs", metadata,
    Column("run_id", Text, primary_key=True),
    Column("symbols", JsonType, nullable=False),
    Column("ledger_fingerprint", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ledger_problems", JsonType, nullable=False),
    Column("assume_zero_fees", Boolean, nullable=False, default=False),
    # The symbols' fingerprints and the ones copied from the version before (migration 0003).
    Column("per_symbol", JsonType),
)

#: One per-symbol step's result, until the run's final step promotes it into a version.
fifo_staging = Table(
    "fifo_staging", metadata,
    Column("run_id", Text, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("trade_count", Integer, nullable=False),
    Column("problems", JsonType, nullable=False),
    Column("allocations", LargeBinary, nullable=False),  # Arrow IPC stream, exact decimals
    Column("staged_at", UtcDateTime, nullable=False),
)

#: Validation results of one symbol's rows of a version, keyed by what they were judged on:
#: a digest of those rows' values (with each decimal's scale), the fingerprint of the symbol's
#: ledger orders, and the revision of the rules. Equal keys mean the same judgment, so a
#: version whose rows of a symbol equal rows judged before (a copied symbol, the same version
#: validated again) is not read again for them.
fifo_check_results = Table(
    "fifo_check_results", metadata,
    Column("symbol", Text, primary_key=True),
    Column("rows_digest", Text, primary_key=True),
    Column("ledger_fingerprint", Text, primary_key=True),
    Column("rules_revision", Integer, primary_key=True, autoincrement=False),
    Column("results", JsonType, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

#: recon-assets' own tables, created by :func:`recon_assets.ledger.store.LedgerStore.ensure_schema`.
OWN_TABLES = [t for t in metadata.sorted_tables if t.name != "trade_records"]
