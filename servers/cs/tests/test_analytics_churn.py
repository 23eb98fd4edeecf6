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
    for l2 in (0.0, 5.0):
        m = churn_model.fit(x, y, l2=l2)
        # The optimum solves the score equations: Zᵀ(y − p) = l2·β on the standardised column,
        # Σ(y − p) = 0 for the unpenalised intercept.
        z = (x[:, 0] - x[:, 0].mean()) / x[:, 0].std()
        residual = y - m.predict(x)
        assert abs(residual.sum()) < 1e-8
        assert z @ residual == pytest.approx(l2 * m.coef[0], abs=1e-8)
    rows = [{"a": "x", "b": "1"}, {"a": "y", "b": ""}, {"a": None, "b": "3"}]
    spec = churn_model.build_encoding(rows, ["a", "b"])
    assert churn_model.encoded_names(spec) == ["a=x", "a=y", "b"]
    assert churn_model.encode(rows, spec).tolist() == [[1, 0, 1], [0, 1, 2], [0, 0, 3]]


@pytest.mark.parametrize("churned_clients", [{2, 5, 7, 11, 13, 17, 19}, {3, 8, 14, 20, 22}])
def test_folds_keep_a_clients_rows_together_and_spread_churned_clients(churned_clients):
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(100, 123), rng.integers(1, 9, size=23))
    rng.shuffle(groups)  # a client's rows need not be adjacent
    y = np.array([float(g - 100 in churned_clients and rng.random() < 0.5) for g in groups])
    for c in churned_clients:  # every churned client has a positive row
        y[np.flatnonzero(groups == 100 + c)[0]] = 1.0
    k = 5
    folds = churn_model.grouped_folds(groups, y, k)
    by_client = {int(g): set(folds[groups == g].tolist()) for g in np.unique(groups)}
    assert all(len(f) == 1 for f in by_client.values())  # no client spans two folds
    churned_per_fold = sorted(sum(1 for c in churned_clients if by_client[100 + c] == {f}) for f in range(k))
    # Dealt round-robin: 7 churned clients → 2, 2, 1, 1, 1 per fold; 5 → one each.
    n = len(churned_clients)
    assert churned_per_fold == sorted([n // k + (f < n % k) for f in range(k)])
    assert all(y[folds == f].sum() > 0 for f in range(k))
    assert churn_model.grouped_folds(groups, y, k).tolist() == folds.tolist()  # deterministic


def test_one_row_per_account_folds_are_the_per_row_stratified_split():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0], dtype=float)
    rng = np.random.default_rng(0)  # each class shuffled with seed 0, negatives first, dealt round-robin
    expected = np.empty(len(y), dtype=int)
    for label in (0.0, 1.0):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        expected[idx] = np.arange(len(idx)) % 3
    assert churn_model.grouped_folds(np.arange(len(y)), y, 3).tolist() == expected.tolist()


def test_cross_validation_fills_missing_values_from_the_training_folds_only():
    # An extreme value in one row: a fill averaged over every row (held-out rows included) would
    # give the other folds' missing values a different number, and other predictions.
    rows = [{"a": 1000.0}] + [{"a": None if i % 3 == 0 else float(i % 5)} for i in range(1, 40)]
    y = np.array([1.0] + [float(i % 4 == 0) for i in range(1, 40)])
    groups = list(range(40))
    fold = churn_model.grouped_folds(groups, y, 4)
    oof = np.zeros(len(y))
    for f in range(4):
        train = [i for i in range(40) if fold[i] != f]
        present = [rows[i]["a"] for i in train if rows[i]["a"] is not None]
        fill = sum(present) / len(present)
        x = np.array([[fill if r["a"] is None else r["a"]] for r in rows])
        model = churn_model.fit(x[train], y[train], 1.0)
        oof[fold == f] = model.predict(x[fold == f])
    got = churn_model.cross_validate(rows, ["a"], y, groups, 4, 1.0)
    assert got.auc == churn_model.auc(y, oof)
    assert got.brier == churn_model.brier(y, oof)
