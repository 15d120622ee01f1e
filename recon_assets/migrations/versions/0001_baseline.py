"""Baseline: recon-assets' tables as released before migrations existed.

Those ledgers were built by ``create_all`` and are stamped here, so this revision changes
nothing; its shape is ``backfill_requests`` with a UNIQUE ``order_id`` (one request per order,
ever).
"""

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: the baseline is what ``create_all`` of that release made."""


def downgrade() -> None:
    """Nothing before the baseline."""
