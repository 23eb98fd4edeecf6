"""Health-score configuration (REFERENCE.md defaults marked *(config)*), from env `REVOPS_CS_HEALTH_*`.

Defaults:
- weights: usage 30, engagement 20, support 15, sentiment 15, adoption 10, contract 10 (any
  non-negative numbers; shown as percentages of the weights of components that have data);
- usage target: share of purchased seats active in the last 7 days, per tier
  (enterprise 0.6, mid_market 0.7, smb 0.8); sub-score `100·min(share/target, 1)`;
- engagement: `max(0, 100 − 2·days since the last login)`;
- support: `max(0, 100 − 10·tickets opened in the last 30 days)`;
- sentiment: `(NPS + 100)/2` over the client's NPS answers in the last 180 days;
- adoption: features used at least once ÷ catalogue features eligible for the client's tier;
- contract: `100 − 25·failed payments in 90 days − 50 if the renewal date has passed`, clamped to 0–100
  (the 25 is `contract_per_failed_payment`, the 50 `contract_overdue_penalty`);
- bands (half-open lower bounds): excellent 90, good 70, at risk 50;
- a score needs at least one of `required_any` (default usage, engagement) with data, else it is
  null with the reason — absence of evidence is not health;
- trend: least-squares slope over the latest snapshot of each of the last 12 weeks, needing at least
  8 of them; stable within ±2 points/week.
Example: `REVOPS_CS_HEALTH_WEIGHTS='{"usage": 40, "engagement": 20, "support": 10, "sentiment": 10,
"adoption": 10, "contract": 10}'`.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from revops_cs.analytics.health import Bands, contract_score

COMPONENTS: tuple[str, ...] = ("usage", "engagement", "support", "sentiment", "adoption", "contract")


class HealthSettings(BaseSettings):
    """Weights, targets, windows and bands of the health score."""

    model_config = SettingsConfigDict(env_prefix="REVOPS_CS_HEALTH_", extra="ignore")

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "usage": 30.0,
            "engagement": 20.0,
            "support": 15.0,
            "sentiment": 15.0,
            "adoption": 10.0,
            "contract": 10.0,
        }
    )
    usage_target_share: dict[str, float] = Field(
        default_factory=lambda: {"enterprise": 0.6, "mid_market": 0.7, "smb": 0.8}
    )
    usage_window_days: int = Field(default=7, ge=1, le=90)
    support_window_days: int = Field(default=30, ge=1, le=365)
    sentiment_window_days: int = Field(default=180, ge=1, le=730)
    payment_window_days: int = Field(default=90, ge=1, le=730)
    contract_per_failed_payment: float = Field(default=25.0, ge=0, le=100)
    contract_overdue_penalty: float = Field(default=50.0, ge=0, le=100)
    band_excellent: float = Field(default=90.0, ge=0, le=100)
    band_good: float = Field(default=70.0, ge=0, le=100)
    band_at_risk: float = Field(default=50.0, ge=0, le=100)
    required_any: list[str] = Field(
        default_factory=lambda: ["usage", "engagement"],
        description="A score needs at least one of these components with data; else it is null.",
    )
    trend_min_points: int = Field(default=8, ge=2, le=52)
    trend_stable_within: float = Field(default=2.0, ge=0)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown health components: {sorted(unknown)}; known: {list(COMPONENTS)}")
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return {k: float(value.get(k, 0.0)) for k in COMPONENTS}

    @property
    def bands(self) -> Bands:
        return Bands(excellent=self.band_excellent, good=self.band_good, at_risk=self.band_at_risk)

    @property
    def contract_recipe(self) -> dict[str, float]:
        """The contract sub-score's configured numbers (part of its inputs, so a change rescores)."""
        return {
            "per_failed_payment": self.contract_per_failed_payment,
            "overdue_penalty": self.contract_overdue_penalty,
        }

    def contract(self, failed_payments: int, days_to_renewal: int | None) -> tuple[float, str]:
        """The contract sub-score with the configured recipe, and how it was computed."""
        per, penalty = self.contract_per_failed_payment, self.contract_overdue_penalty
        score = contract_score(failed_payments, days_to_renewal, per_failure=per, overdue_penalty=penalty)
        overdue = days_to_renewal is not None and days_to_renewal < 0
        return score, f"100 − {per:g}·{failed_payments}" + (
            f" − {penalty:g} (renewal date passed)" if overdue else ""
        )


@lru_cache(maxsize=1)
def health_settings() -> HealthSettings:
    """Process-wide health settings, read once from the environment."""
    return HealthSettings()
