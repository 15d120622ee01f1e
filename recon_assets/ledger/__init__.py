"""The ledger gateway: the bot's ``trade_records`` and recon-assets' own tables (SPEC section 2)."""
