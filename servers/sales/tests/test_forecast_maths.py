"""The forecast maths against REFERENCE.md (Sales) and the exact moments of the total."""

from __future__ import annotations

import math

import pytest

from revops_sales.analytics import forecast
from revops_sales.analytics.forecast import OpenDeal


def _portfolio() -> list[OpenDeal]:
    # 300 deals with spread amounts and probabilities (deterministic, no randomness in the test data).
    return [
        OpenDeal(amount_minor=1_000_00 + 137_00 * (i % 23), probability=((i * 7) % 19 + 1) / 20)
        for i in range(300)
    ]


def test_monte_carlo_mean_and_variance_match_the_exact_moments() -> None:
    deals = _portfolio()
    mean = sum(d.amount_minor * d.probability for d in deals)
    variance = sum(d.amount_minor**2 * d.probability * (1 - d.probability) for d in deals)
    sim = forecast.monte_carlo(deals, runs=10_000)
    assert sim.runs == 10_000
    # The sample mean's relative standard error here is √variance/(mean·√n) ≈ 0.06 %.
    assert sim.mean == pytest.approx(mean, rel=0.01)
    # The sample variance of a near-normal total has relative standard error √(2/n) = 1.41 % at
    # 10 000 runs (measured over 40 seeds: 1.43 %), so 1 % is missed by more than half of all
    # seeds; 5 % is 3.5 standard errors — a wrong simulation (e.g. correlated deals) is far outside.
    assert sim.std**2 == pytest.approx(variance, rel=0.05)
    assert sim.p10 < sim.p50 < sim.p90
    assert forecast.exact_moments(deals) == pytest.approx((mean, variance))


def test_monte_carlo_is_reproducible_with_its_seed_and_counts_the_won_amount() -> None:
    deals = _portfolio()
    first = forecast.monte_carlo(deals, seed=7, already_won_minor=5_000_00, target_minor=0)
    again = forecast.monte_carlo(deals, seed=7, already_won_minor=5_000_00, target_minor=0)
    assert first == again
    assert first.p_at_least_target == 1.0
    certain = forecast.monte_carlo([OpenDeal(100, 1.0), OpenDeal(50, 0.0)], already_won_minor=25)
    assert (certain.p10, certain.p50, certain.p90, certain.std) == (125.0, 125.0, 125.0, 0.0)


def test_p_at_least_quota_matches_the_binomial_for_identical_deals() -> None:
    # 10 deals of 100 at p = 0.5: P(total ≥ 600) = P(X ≥ 6) for X ~ Binomial(10, 0.5) = 386/1024.
    sim = forecast.monte_carlo([OpenDeal(100, 0.5)] * 10, target_minor=600, runs=10_000)
    exact = sum(math.comb(10, k) for k in range(6, 11)) / 1024
    assert sim.p_at_least_target == pytest.approx(exact, abs=0.02)


def test_weighted_pipeline_uses_the_reference_stage_probabilities() -> None:
    # REFERENCE: proposal 65 %, negotiation 80 %, prospecting 10 %.
    deals = [OpenDeal(10_000_00, 0.65), OpenDeal(5_000_00, 0.80), OpenDeal(20_000_00, 0.10)]
    assert forecast.weighted_pipeline(deals) == pytest.approx(6_500_00 + 4_000_00 + 2_000_00)


def test_category_rollups_are_cumulative_and_omit_omitted() -> None:
    totals = {"closed": 100, "commit": 50, "most_likely": 30, "best_case": 20, "pipeline": 10, "omitted": 999}
    assert forecast.category_rollup(totals) == {
        "closed": 100,
        "commit": 150,
        "most_likely": 180,
        "best_case": 200,
        "pipeline": 210,
    }


def test_win_rate_uses_the_default_under_ten_observations_and_shrinks_above() -> None:
    assert forecast.smoothed_win_rate(won=5, lost=4, default=0.3) == 0.3
    # 12 won of 20 with 10 pseudo-observations at 0.3: (12 + 3) / 30 = 0.5.
    assert forecast.smoothed_win_rate(won=12, lost=8, default=0.3) == pytest.approx(0.5)


def test_time_decay_halves_the_probability_one_half_life_past_the_median() -> None:
    assert forecast.time_decayed(0.8, days_in_stage=40, median_days=10, half_life_days=30) == pytest.approx(
        0.4
    )
    assert forecast.time_decayed(0.8, days_in_stage=5, median_days=10, half_life_days=30) == 0.8
    assert forecast.time_decayed(0.8, days_in_stage=500, median_days=None, half_life_days=30) == 0.8
