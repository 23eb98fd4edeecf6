"""Configurable thresholds for onboarding, retention and expansion (REFERENCE.md defaults).

Defaults live in the pydantic models below; a team overrides them per section with the
`configure_cs_thresholds` tool, which stores only the overridden keys in `cs_threshold_config`.
Tools read the effective values at call time, so a change applies to the next call.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlmodel import Session

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_cs.models.retention import CsThresholdConfig

M = TypeVar("M", bound=BaseModel)


class ChurnRules(BaseModel):
    """Churn-risk rule points and thresholds (REFERENCE: Churn risk, rules)."""

    usage_drop_pct: float = Field(30.0, gt=0, le=100, description="Usage fall month on month, percent.")
    usage_drop_points: int = Field(25, ge=0, le=100)
    no_login_days: int = Field(14, ge=1)
    no_login_points: int = Field(20, ge=0, le=100)
    tickets_30d: int = Field(3, ge=1, description="Tickets opened in the last 30 days.")
    tickets_points: int = Field(15, ge=0, le=100)
    detractor_max_score: int = Field(6, ge=0, le=10, description="NPS answers at or below are detractors.")
    detractor_points: int = Field(15, ge=0, le=100)
    renewal_window_days: int = Field(90, ge=1)
    renewal_health_below: float = Field(70.0, ge=0, le=100)
    renewal_points: int = Field(15, ge=0, le=100)
    failed_payment_days: int = Field(
        30, ge=1, description="A failed payment within this many days counts (default 30)."
    )
    failed_payment_points: int = Field(10, ge=0, le=100)
    high_at: int = Field(60, ge=1, le=100, description="Score at or above: high risk.")
    medium_at: int = Field(30, ge=1, le=100, description="Score at or above (and below high_at): medium.")

    @model_validator(mode="after")
    def _levels_ordered(self) -> ChurnRules:
        if self.medium_at >= self.high_at:
            raise ValueError("medium_at must be below high_at")
        return self


class ExpansionSignals(BaseModel):
    seat_utilisation_pct: float = Field(80.0, gt=0, le=1000)
    usage_growth_pct: float = Field(20.0, gt=0, description="Usage up quarter on quarter, percent.")
    plan_limit_events: list[str] = Field(default_factory=lambda: ["plan_limit_hit"], max_length=20)
    health_min: float = Field(80.0, ge=0, le=100)
    promoter_min_score: int = Field(9, ge=0, le=10)
    renewal_min_days: int = Field(60, ge=0)
    renewal_max_days: int = Field(120, ge=1)


class RenewalForecast(BaseModel):
    """Renewal probability by health band (our documented default mapping)."""

    probability_by_band: dict[str, float] = Field(
        default_factory=lambda: {"excellent": 0.95, "good": 0.85, "at_risk": 0.6, "critical": 0.3}
    )

    @model_validator(mode="after")
    def _probabilities(self) -> RenewalForecast:
        for band, p in self.probability_by_band.items():
            if not 0 <= p <= 1:
                raise ValueError(f"probability for {band} must be within 0..1")
        return self


class Revenue(BaseModel):
    gross_margin_pct: float = Field(80.0, gt=0, le=100, description="Gross margin used for LTV.")


class Onboarding(BaseModel):
    value_event: str = Field("first_value", min_length=1, max_length=100, description="First-value event.")
    at_risk_days: int = Field(7, ge=0, description="Open milestones due within this many days are at risk.")
    certification_modules: list[str] = Field(default_factory=list, max_length=50)


class Sla(BaseModel):
    """Escalation resolution targets in minutes by severity (REFERENCE: Support SLA)."""

    resolution_minutes: dict[str, int] = Field(
        default_factory=lambda: {"urgent": 120, "high": 480, "normal": 1440, "low": 4320}
    )


class ChurnModelConfig(BaseModel):
    min_positives: int = Field(30, ge=2)
    min_negatives: int = Field(30, ge=2)
    folds: int = Field(5, ge=2, le=20)
    l2: float = Field(1.0, ge=0, description="L2 penalty on standardised coefficients.")


SECTIONS: dict[str, type[BaseModel]] = {
    "churn_rules": ChurnRules,
    "expansion": ExpansionSignals,
    "renewal": RenewalForecast,
    "revenue": Revenue,
    "onboarding": Onboarding,
    "sla": Sla,
    "churn_model": ChurnModelConfig,
}


def load(session: Session, model: type[M]) -> M:
    """The effective config of one section: defaults overlaid with stored overrides."""
    section = _section_of(model)
    row = session.get(CsThresholdConfig, section)
    overrides = json.loads(row.values) if row is not None else {}
    return model.model_validate(overrides)


def save(session: Session, section: str, values: dict[str, Any], actor: str) -> BaseModel:
    """Validate and store overrides for `section` (merged over earlier ones); returns the effective config."""
    if section not in SECTIONS:
        raise ValidationFailed(
            f"Unknown config section '{section}'.", field="section", hint=f"Choose from {sorted(SECTIONS)}."
        )
    model = SECTIONS[section]
    unknown = set(values) - set(model.model_fields)
    if unknown:
        raise ValidationFailed(
            f"Unknown key(s) for {section}: {', '.join(sorted(unknown))}.",
            field="values",
            hint=f"Keys of {section}: {', '.join(model.model_fields)}.",
        )
    row = session.get(CsThresholdConfig, section)
    merged = {**(json.loads(row.values) if row is not None else {}), **values}
    try:
        effective = model.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValidationFailed(
            f"Invalid {section} value: {first['msg']}.",
            field="values." + ".".join(str(p) for p in first["loc"]),
            hint="Correct the value; nothing was changed.",
        ) from None
    if row is None:
        row = CsThresholdConfig(section=section, values="{}", updated_by=actor)
    row.values = json.dumps(merged, sort_keys=True)
    row.updated_by = actor
    row.updated_at = utcnow()
    session.add(row)
    return effective


def _section_of(model: type[BaseModel]) -> str:
    for name, cls in SECTIONS.items():
        if cls is model:
            return name
    raise KeyError(model.__name__)
