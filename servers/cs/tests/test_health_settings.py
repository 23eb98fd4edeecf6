"""Health-score configuration: REFERENCE defaults, env overrides, and refusal of bad weights."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from revops_cs.services.health_settings import HealthSettings


def test_defaults_are_the_reference_weights_and_bands():
    hs = HealthSettings()
    assert hs.weights == {
        "usage": 30,
        "engagement": 20,
        "support": 15,
        "sentiment": 15,
        "adoption": 10,
        "contract": 10,
    }
    assert (hs.bands.excellent, hs.bands.good, hs.bands.at_risk) == (90, 70, 50)


def test_env_overrides_weights_and_fills_unnamed_components_with_zero(monkeypatch):
    monkeypatch.setenv("REVOPS_CS_HEALTH_WEIGHTS", '{"usage": 50, "support": 50}')
    monkeypatch.setenv("REVOPS_CS_HEALTH_BAND_GOOD", "75")
    hs = HealthSettings()
    assert hs.weights["usage"] == 50
    assert hs.weights["sentiment"] == 0
    assert hs.bands.good == 75


@pytest.mark.parametrize("weights", ['{"usage": -1}', '{"karma": 10}', '{"usage": 0}'])
def test_bad_weights_fail_at_start_naming_the_problem(monkeypatch, weights):
    monkeypatch.setenv("REVOPS_CS_HEALTH_WEIGHTS", weights)
    with pytest.raises(ValidationError, match="weights"):
        HealthSettings()
