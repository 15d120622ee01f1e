"""``pyproject.toml`` promises only what the tests run on."""

from __future__ import annotations

import sys
import tomllib

from packaging.specifiers import SpecifierSet

from recon_assets_tests.production.conftest import ROOT


def test_requires_python_is_the_tested_python_and_not_older():
    """The simulator parses ``...Z`` times with ``datetime.fromisoformat``, which needs 3.11:
    an install on 3.10 would pass pip and fail at run time."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    supported = SpecifierSet(project["requires-python"])
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in supported
    assert "3.10" not in supported
    readme = (ROOT / "README.md").read_text()
    assert "Python 3.10" not in readme and "Python 3.11+" in readme
