"""A Coinbase Advanced Trade simulator the official SDK talks to over real HTTP.

It serves list fills, list orders and get order from a fixed set of fills, checks every
request's JWT against a CDP key file, pages with opaque cursors, sends lowercase
``x-ratelimit-*`` headers and injects the faults a real client must survive (SPEC section 6).
The demo, ``dagster dev`` on a fresh machine, the tests and the benchmarks all run against it.
"""

from recon_assets.exchange.simulator.app import SimulatorStats
from recon_assets.exchange.simulator.book import load_fills_jsonl, write_fills_jsonl
from recon_assets.exchange.simulator.keys import (ApiKey, create_ec_key_file,
                                                  create_ed25519_key_file, ensure_key_file,
                                                  load_api_key)
from recon_assets.exchange.simulator.server import Simulator

__all__ = [
    "ApiKey", "Simulator", "SimulatorStats", "create_ec_key_file", "create_ed25519_key_file",
    "ensure_key_file", "load_api_key", "load_fills_jsonl", "write_fills_jsonl",
]
