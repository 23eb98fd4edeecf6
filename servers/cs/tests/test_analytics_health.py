"""Pure maths of health, segmentation and engagement against REFERENCE.md formulas."""

from __future__ import annotations

from datetime import date

import pytest

from revops_cs.analytics import engagement as eng
from revops_cs.analytics import health as h
from revops_cs.analytics import segmentation as seg


def test_weighted_mean_spreads_a_missing_components_weight():
    weights = {"usage": 30, "engagement": 20, "support": 15, "sentiment": 15, "adoption": 10, "contract": 10}
    scores = {
        "usage": 80,
        "engagement": 60,
        "support": 100,
        "sentiment": None,
        "adoption": 50,
        "contract": 100,
    }
    value, missing = h.weighted_mean(scores, weights)
    # (30·80 + 20·60 + 15·100 + 10·50 + 10·100) / 85
    assert value == pytest.approx(6600 / 85)
    assert missing == ["sentiment"]
    shares = h.effective_weights([k for k, v in scores.items() if v is not None], weights)
    assert shares["usage"] == pytest.approx(100 * 30 / 85)
    assert sum(shares.values()) == pytest.approx(100)


def test_weighted_mean_without_any_data_refuses():
    with pytest.raises(ValueError):
        h.weighted_mean({"usage": None}, {"usage": 30})


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (100, "excellent"),
        (90, "excellent"),
        (89.99, "good"),
        (70, "good"),
        (69.9, "at_risk"),
        (50, "at_risk"),
        (49.99, "critical"),
        (0, "critical"),
    ],
)
def test_bands_are_half_open(score, band):
    assert h.band(score) == band


def test_recency_and_ticket_recipes():
    assert h.recency_score(0) == 100
    assert h.recency_score(10) == 80
    assert h.recency_score(60) == 0
    assert h.tickets_score(0) == 100
    assert h.tickets_score(3) == 70
    assert h.tickets_score(12) == 0


def test_nps_examples_and_single_answer_rule():
    # REFERENCE: shares (1/2, 1/3, 1/6) → NPS 33.3
    answers = [10, 9, 10, 7, 8, 3]
    assert h.nps(answers) == pytest.approx(100 / 3)
    assert h.nps_score(answers) == pytest.approx((100 / 3 + 100) / 2)
    assert (h.nps_score([10]), h.nps_score([8]), h.nps_score([2])) == (100, 50, 0)


def test_attainment_both_directions():
    assert h.attainment(0.35, 0.7) == pytest.approx(50)
    assert h.attainment(0.9, 0.7) == 100
    assert h.attainment(4, 2, higher_is_better=False) == 50


def test_contract_recipe():
    assert h.contract_score(0, 100) == 100
    assert h.contract_score(1, 100) == 75
    assert h.contract_score(1, -3) == 25
    assert h.contract_score(5, None) == 0


def test_slope_and_stable_band():
    xs = [0, 1, 2, 3]
    assert h.slope(xs, [70, 72, 74, 76]) == pytest.approx(2)
    assert h.trend(2.0) == "stable"
    assert h.trend(-2.01) == "declining"
    assert h.trend(h.slope(xs, [60, 65, 70, 75])) == "improving"
    with pytest.raises(ValueError):
        h.slope([1], [1])


def test_abc_cut_by_cumulative_arr_share():
    tiers = seg.abc_tiers({"a": 500, "b": 300, "c": 100, "d": 60, "e": 40})
    # running share before each: a 0 %, b 50 %, c 80 %, d 90 %, e 96 %
    assert tiers == {"a": "A", "b": "A", "c": "B", "d": "B", "e": "C"}
    assert seg.threshold_tiers({"x": 10, "y": 5, "z": 1}, a_min=10, b_min=5) == {"x": "A", "y": "B", "z": "C"}


def test_quintiles_rank_then_cut_keep_ties_together():
    values = dict(enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
    scores = seg.quintile_scores(values)
    assert [scores[i] for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    tied = seg.quintile_scores({"a": 5, "b": 5, "c": 5, "d": 1, "e": 9})
    assert tied["a"] == tied["b"] == tied["c"] == 3
    assert (tied["d"], tied["e"]) == (1, 5)
    rfm = seg.rfm({"x": 1, "y": 300}, {"x": 10, "y": 1}, {"x": 1000, "y": 10})
    assert rfm["x"] == (5, 5, 5)
    assert rfm["y"] == (3, 3, 3)  # two clients: ranks 1 and 2 → ceil(2.5)=3 and 5


def test_lifecycle_segment():
    kw = {"as_of": date(2026, 6, 1)}
    assert seg.lifecycle_segment(stage="churned", contract_start=None, renewal_date=None, **kw) == "churned"
    assert (
        seg.lifecycle_segment(
            stage="mature", contract_start=date(2025, 1, 1), renewal_date=date(2026, 8, 30), **kw
        )
        == "renewal_window"
    )
    assert (
        seg.lifecycle_segment(stage="adoption", contract_start=date(2026, 5, 20), renewal_date=None, **kw)
        == "onboarding"
    )
    assert (
        seg.lifecycle_segment(stage="adoption", contract_start=date(2026, 1, 1), renewal_date=None, **kw)
        == "adoption"
    )
    assert (
        seg.lifecycle_segment(stage="adoption", contract_start=date(2025, 1, 1), renewal_date=None, **kw)
        == "mature"
    )


def test_engagement_active_users_and_baseline_drop():
    d = date(2026, 3, 10)
    logins = [(d, "a"), (d, "b"), (d, "a"), (date(2026, 3, 9), "a")]
    assert eng.mean_daily_active(logins, date(2026, 3, 9), d) == 1.5
    assert eng.active_users(logins, d, d) == {"a", "b"}
    assert eng.stickiness(1.5, 3) == 50
    assert eng.stickiness(0, 0) is None
    weekly = [10.0] * 12 + [6.0] * 4
    res = eng.baseline_change(weekly)
    assert res.pct_change == pytest.approx(-40)
    assert res.dropped
    assert res.z_score is None
    flat = eng.baseline_change([10.0] * 12 + [8.0] * 4)
    assert flat.pct_change == pytest.approx(-20)
    assert not flat.dropped
    buckets = eng.weekly_totals([(d, 1.0), (date(2026, 3, 4), 2.0), (date(2026, 3, 3), 5.0)], d, 2)
    assert buckets == [5.0, 3.0]


def test_weekly_latest_keeps_the_last_snapshot_of_each_week():
    first = date(2026, 1, 1)
    points = [(date(2026, 1, 2), 80.0), (date(2026, 1, 5), 70.0), (date(2026, 1, 15), 60.0)]
    # Jan 2 and Jan 5 share week 0 (the later wins); Jan 15 is week 2; x is the exact week offset.
    assert h.weekly_latest(points, first) == [(4 / 7, 70.0), (2.0, 60.0)]
    assert h.weekly_latest([], first) == []
