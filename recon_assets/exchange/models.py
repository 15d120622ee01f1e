"""The fills frame: Coinbase ``Fill`` objects as exact, typed columns.

A *fills frame* has the columns of :data:`FILL_COLUMNS`: ``trade_time`` and
``sequence_timestamp`` UTC ``pandas.Timestamp``; ``price``, ``size``, ``commission`` ``Decimal``;
``size_in_quote`` bool; ``side`` as the exchange sends it (``BUY``/``SELL``); the rest strings.
"""

from __future__ import annotations

FILL_COLUMNS = [
    "entry_id", "trade_id", "order_id", "trade_time", "trade_type", "price", "size",
    "commission", "product_id", "sequence_timestamp", "liquidity_indicator", "size_in_quote",
    "user_id", "side",
]
