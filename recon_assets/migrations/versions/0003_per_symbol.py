"""fifo_computation_log and fifo_staging_runs: a ``per_symbol`` JSON column.

A version's log row keeps what each symbol contributed and the fingerprint of the orders it
was computed from, so the next version of the same scope recomputes only the symbols whose
orders changed and copies the others' rows; a staged plan keeps the same per symbol. Versions
written before this revision have none and are followed by a full recompute.
"""

from alembic import op
from sqlalchemy import JSON, Column, inspect
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_per_symbol"
down_revision = "0002_backfill_requests_reopen"
branch_labels = None
depends_on = None

TABLES = ("fifo_computation_log", "fifo_staging_runs")
COLUMN = "per_symbol"


def upgrade() -> None:
    """Add the column to each table that lacks it."""
    bind = op.get_bind()
    for table in TABLES:
        if COLUMN not in {c["name"] for c in inspect(bind).get_columns(table)}:
            op.add_column(table, Column(COLUMN, JSON().with_variant(JSONB(), "postgresql")))


def downgrade() -> None:
    """Drop the column again (versions then lose what a later one could copy)."""
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(COLUMN)
