from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from recon_assets.money import NotADecimal, round_money, to_decimal


@pytest.mark.parametrize("value, expected", [
    (0.1, Decimal("0.1")), (0.1 + 0.2, Decimal("0.30000000000000004")),
    (np.float64(0.1), Decimal("0.1")), ("1e-8", Decimal("1e-8")), (3, Decimal(3)),
    (None, None), (float("nan"), None), (pd.NA, None), ("", None)])
def test_to_decimal_is_exact(value, expected):
    assert to_decimal(value) == expected


@pytest.mark.parametrize("value", ["abc", float("inf"), True, "NaN1"])
def test_to_decimal_rejects(value):
    with pytest.raises(NotADecimal):
        to_decimal(value)


def test_round_money_half_even():
    assert round_money(Decimal("0.000000005")) == Decimal("0E-8")
    assert round_money(Decimal("0.000000015")) == Decimal("0.00000002")
