"""recon-assets: reconcile a Coinbase trading bot's ledger with the exchange, as Dagster assets.

Importing the package is cheap: Dagster is only imported by ``recon_assets.definitions`` and
the modules named ``assets``, ``checks``, ``sensors`` and ``schedules``.
"""

__version__ = "0.1.0"
