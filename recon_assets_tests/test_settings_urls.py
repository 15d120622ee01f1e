"""URLs a user can get wrong are refused when the settings are read: exit 2 with one line,
before any database is opened or any request is sent (so nothing is retried against them)."""

from __future__ import annotations

import pytest

from recon_assets.cli import main
from recon_assets.exchange.demo import demo_history
from recon_assets.exchange.simulator import Simulator, create_ec_key_file


@pytest.mark.parametrize("url", [
    "notaurl", "sqlite:", "mysql://u:hunter2@h/db", "oracle://h/db", "postgresql+foo://h/db",
    "postgresql+asyncpg://h/db", "postgresql://u:hunter2@h:notaport/db"])
def test_a_malformed_or_unsupported_database_url_exits_2(url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["fifo", "-q"]) == 2
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert out == "" and line.startswith("recon-assets: DATABASE_URL ")
    assert "hunter2" not in line


@pytest.mark.parametrize("url", ["postgresql://", "postgres://u@h/db",
                                 "postgresql+psycopg2://u@h:5432/db", "sqlite:///x.db"])
def test_urls_libpq_and_sqlalchemy_accept_are_accepted(url):
    from recon_assets.settings import load_settings

    load_settings({"DATABASE_URL": url})


@pytest.mark.parametrize("url", ["ftp://x", "http://", "http://h:p", "http://127.0.0.1:99999",
                                 "http://exa mple:80", "PATH"])
def test_an_invalid_exchange_url_exits_2_before_any_request(url, tmp_path, monkeypatch, capsys):
    """``PATH`` stands for a live simulator's URL with a path: it must get no request."""
    with Simulator(demo_history().fills[:3], tmp_path / "key.json") as sim:
        monkeypatch.setenv("RECON_EXCHANGE_URL", url.replace("PATH", f"{sim.url}/api"))
        monkeypatch.setenv("COINBASE_KEY_FILE", str(sim.key_file))
        assert main(["sync", "-q"]) == 2
        assert main(["fifo", "-q"]) == 2  # refused with the settings, whatever the command
        assert sim.stats.requests == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("recon-assets: RECON_EXCHANGE_URL is invalid")
                                   for line in lines)


def test_a_valid_exchange_url_is_kept(tmp_path):
    from recon_assets.settings import load_settings

    create_ec_key_file(tmp_path / "key.json")
    settings = load_settings({"RECON_EXCHANGE_URL": "http://127.0.0.1:8799",
                              "COINBASE_KEY_FILE": str(tmp_path / "key.json")})
    assert settings.exchange_url == "http://127.0.0.1:8799"


def test_an_invalid_exchange_url_is_named_before_a_missing_key_file(monkeypatch, capsys):
    """``RECON_EXCHANGE_URL=ftp://x`` alone: the URL is what is wrong, so that is what is said
    first (not that a key file is missing, which the user would add only to hear it again)."""
    monkeypatch.setenv("RECON_EXCHANGE_URL", "ftp://x")
    assert main(["sync", "-q"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("recon-assets: RECON_EXCHANGE_URL is invalid"), line
