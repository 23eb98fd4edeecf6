"""Revenue maths against REFERENCE.md definitions."""

from __future__ import annotations

import pytest

from revops_cs.analytics import revenue


def test_nrr_grr_and_components():
    r = revenue.retention({1: 1000, 2: 1000, 3: 500}, {1: 1300, 2: 700, 4: 800})
    assert (r.start_mrr, r.end_mrr, r.expansion, r.contraction, r.churn) == (2500, 2000, 300, 300, 500)
    assert r.nrr == pytest.approx(2000 / 2500)
    assert r.grr == pytest.approx((1000 + 700) / 2500)
    assert r.start_mrr + r.expansion - r.contraction - r.churn == r.end_mrr


def test_grr_capped_new_accounts_excluded():
    r = revenue.retention({1: 100, 2: 0}, {1: 500, 2: 900})
    assert r.accounts == 1
    assert r.grr == 1.0
    assert r.nrr == 5.0


def test_annualised_churn():
    assert revenue.annualise(0.02, 30) == pytest.approx(1 - 0.98 ** (365 / 30))
    assert revenue.annualise(0.1, 365) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        revenue.annualise(0.1, 0)


def test_ltv_and_zero_churn():
    assert revenue.ltv(1000, 0.8, 0.02) == pytest.approx(40_000)
    with pytest.raises(ZeroDivisionError):
        revenue.ltv(1000, 0.8, 0)


def test_renewal_forecast():
    assert revenue.renewal_forecast([(100, 0.9), (50, None), (10, 0.5)]) == (160, 95.0, 50)
