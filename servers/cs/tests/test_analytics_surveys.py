"""Survey and sentiment maths against REFERENCE.md's worked examples (pure functions, no I/O)."""

from __future__ import annotations

import math

import pytest

from revops_cs.analytics import sentiment, surveys


def test_nps_reference_example_halves_thirds_sixths():
    # 6 answers: 3 promoters (½), 2 passives (⅓), 1 detractor (⅙) → NPS 33.3, variance 5/9.
    result = surveys.nps([10, 9, 9, 8, 7, 3])
    assert result is not None
    assert (result.promoters, result.passives, result.detractors) == (3, 2, 1)
    assert result.score == pytest.approx(100 / 3)
    assert result.variance == pytest.approx(5 / 9)
    assert result.margin_of_error == pytest.approx(1.96 * math.sqrt((5 / 9) / 6) * 100)


def test_nps_reference_example_thirty_twenty():
    scores = [9] * 3 + [7] * 5 + [6] * 2  # 30 % promoters, 20 % detractors
    result = surveys.nps(scores)
    assert result is not None
    assert result.score == pytest.approx(10.0)
    assert result.variance == pytest.approx(0.3 + 0.2 - 0.1**2)


def test_nps_boundaries_and_empty():
    assert [surveys.nps_category(s) for s in (0, 6, 7, 8, 9, 10)] == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
    ]
    assert surveys.nps([]) is None
    everyone = surveys.nps([10, 10])
    assert everyone is not None
    assert everyone.score == 100
    assert everyone.margin_of_error == 0


def test_csat_and_ces():
    assert surveys.csat([5, 4, 3, 1]) == pytest.approx(50.0)
    assert surveys.csat([]) is None
    assert surveys.ces([1, 2, 6]) == pytest.approx(3.0)
    assert surveys.ces([]) is None


def test_vader_labels_follow_the_published_thresholds():
    assert sentiment.label(0.05) == "positive"
    assert sentiment.label(0.049) == "neutral"
    assert sentiment.label(-0.05) == "negative"
    assert sentiment.compound("I love this, it is great") > 0.5
    assert sentiment.compound("Terrible, slow and broken") < -0.5


def test_themes_count_comments_and_prefer_frequent_bigrams():
    texts = [
        "The CSV export is slow",
        "csv export keeps timing out",
        "Please fix the CSV export",
        "Great onboarding",
    ]
    found = sentiment.themes(texts, top=3)
    assert found[0].term == "csv export"
    assert found[0].mentions == 3
    assert found[0].members == (0, 1, 2)
    assert all(t.term not in sentiment.STOP_WORDS for t in found)
