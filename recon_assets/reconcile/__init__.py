"""Reconciliation domain logic: fills -> orders, order diffs and the three tiers (SPEC section 4).

Pure and Dagster-free; the assets in ``assets.py`` read through the gateways and call these.
"""
