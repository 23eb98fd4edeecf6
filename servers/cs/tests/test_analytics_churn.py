"""Churn rules and churn-model maths, pure."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from revops_cs.analytics import churn_model, churn_rules
from revops_cs.analytics.churn_rules import ChurnRules

D = date(2026, 6, 30)


def test_rules_boundaries():
    cfg = ChurnRules()
    exact = churn_rules.RiskFacts(
        as_of=D, usage_current=7, usage_previous=10, last_login=date(2026, 6, 16), tickets_30d=2
    )
    pts = {h.rule: h.points for h in churn_rules.evaluate(exact, cfg)}
    assert pts["usage_drop"] == 25  # exactly −30 %
    assert pts["no_login"] == 20  # exactly 14 days
    assert pts["support_load"] == 0
    under = churn_rules.RiskFacts(
        as_of=D, usage_current=8, usage_previous=10, last_login=date(2026, 6, 17), tickets_30d=3
    )
    pts = {h.rule: h.points for h in churn_rules.evaluate(under, cfg)}
    assert pts["usage_drop"] == 0
    assert pts["no_login"] == 0
    assert pts["support_load"] == 15
    assert churn_rules.level(60, cfg) == "high"
    assert churn_rules.level(59, cfg) == "medium"
    assert churn_rules.level(29, cfg) == "low"


def test_never_having_logged_in_is_not_evaluated_rather_than_scored_as_risk():
    # Issue 7: a client with no login data once earned the full no-login points.
    never = churn_rules.RiskFacts(as_of=D, usage_current=5, usage_previous=5, last_login=None, tickets_30d=0)
    hit = next(h for h in churn_rules.evaluate(never, ChurnRules()) if h.rule == "no_login")
    assert (hit.points, hit.max_points) == (0, 20)
    assert hit.evidence.startswith("Not evaluated")


def test_auc_lift_brier_known_values():
    y = np.array([0, 0, 1, 1], dtype=float)
    assert churn_model.auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert churn_model.auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert churn_model.brier(y, np.array([0.0, 0.0, 1.0, 1.0])) == 0.0
    y10 = np.array([1] + [0] * 9, dtype=float)
    assert churn_model.top_decile_lift(y10, np.linspace(1, 0, 10)) == pytest.approx(10.0)


def test_logistic_fit_recovers_signal_and_encodes_categories():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 1))
    y = (rng.random(2000) < 1 / (1 + np.exp(-(2 * x[:, 0] - 0.5)))).astype(float)
    m = churn_model.fit(x, y, l2=0.0)
    assert m.coef[0] / m.stds[0] == pytest.approx(2.0, abs=0.25)
    rows = [{"a": "x", "b": "1"}, {"a": "y", "b": ""}, {"a": None, "b": "3"}]
    spec = churn_model.build_encoding(rows, ["a", "b"])
    assert churn_model.encoded_names(spec) == ["a=x", "a=y", "b"]
    assert churn_model.encode(rows, spec).tolist() == [[1, 0, 1], [0, 1, 2], [0, 0, 3]]
