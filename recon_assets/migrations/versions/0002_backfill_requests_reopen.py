"""backfill_requests: several requests per order, at most one open (pending or approved).

The baseline's UNIQUE ``order_id`` kept an order that was applied and later went missing
from ever being requested again. It becomes a plain index plus a partial unique index over
the open requests, which still makes a second open request for one order impossible.
SQLite cannot drop a constraint, so the table is rebuilt (Alembic batch mode) from the
definition below, which is frozen here rather than imported: later schema changes must not
rewrite what this revision did.
"""

from alembic import op
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, inspect, text

revision = "0002_backfill_requests_reopen"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

TABLE = "backfill_requests"
OPEN_INDEX = "uq_backfill_requests_open_order"
ORDER_INDEX = "ix_backfill_requests_order_id"
OPEN = text("status IN ('pending', 'approved')")


def _sqlite_table() -> Table:
    """The table without the constraint, in the column types SQLite has for it."""
    return Table(
        TABLE, MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        *(Column(name, Text, nullable=False) for name in ("order_id", "symbol", "side")),
        Column("order_time", DateTime, nullable=False),
        *(Column(name, Text, nullable=False) for name in ("price", "size", "total_fees_usd")),
        Column("tier", Integer, nullable=False),
        Column("reason", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("created_by", Text, nullable=False),
        Column("decided_at", DateTime), Column("decided_by", Text),
        Column("applied_at", DateTime), Column("applied_by", Text),
        Column("reconciliation_run_id", Integer),
    )


def upgrade() -> None:
    """Drop the unique constraint on ``order_id`` (if there), add the two indexes (if not)."""
    bind = op.get_bind()
    unique = [c for c in inspect(bind).get_unique_constraints(TABLE)
              if c["column_names"] == ["order_id"]]
    if unique and bind.dialect.name == "sqlite":  # unnamed there: rebuild without it
        with op.batch_alter_table(TABLE, copy_from=_sqlite_table(), recreate="always"):
            pass
    elif unique:
        for constraint in unique:
            op.drop_constraint(constraint["name"], TABLE, type_="unique")
    indexes = {i["name"] for i in inspect(bind).get_indexes(TABLE)}
    if ORDER_INDEX not in indexes:
        op.create_index(ORDER_INDEX, TABLE, ["order_id"])
    if OPEN_INDEX not in indexes:
        op.create_index(OPEN_INDEX, TABLE, ["order_id"], unique=True,
                        sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    """Back to one request per order; fails, as it must, if an order has several."""
    op.drop_index(OPEN_INDEX, TABLE)
    op.drop_index(ORDER_INDEX, TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.create_unique_constraint("uq_backfill_requests_order_id", ["order_id"])
