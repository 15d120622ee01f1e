"""FIFO cost basis as pure functions: :func:`allocate` and the rules that validate its output.

No Dagster and no I/O here: the assets, checks and sensors wrap these functions.
"""

from recon_assets.fifo.allocate import ALLOCATION_COLUMNS, allocate
from recon_assets.fifo.rules import RULE_NAMES, RuleResult, validate_allocations

__all__ = ["ALLOCATION_COLUMNS", "RULE_NAMES", "RuleResult", "allocate", "validate_allocations"]
