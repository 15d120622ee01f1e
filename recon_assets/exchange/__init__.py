"""The exchange side: Coinbase Advanced Trade through the official SDK, and its simulator."""
