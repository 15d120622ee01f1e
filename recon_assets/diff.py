"""Public diff API (SPEC section 8): ``from recon_assets.diff import compare_orders``.

The implementation lives in :mod:`recon_assets.reconcile.compare`; this module only gives it
the stable, documented import path.
"""

from recon_assets.reconcile.compare import OrderDiff, Tolerances, compare_orders

__all__ = ["OrderDiff", "Tolerances", "compare_orders"]
