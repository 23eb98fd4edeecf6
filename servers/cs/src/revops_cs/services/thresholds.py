"""Configurable thresholds for onboarding, retention and expansion (REFERENCE.md defaults).

Defaults live in the pydantic models below (the churn rules' own in `analytics.churn_rules`); a team
overrides them per section with `configure_cs_thresholds`, which stores only the overridden keys in
`cs_threshold_config`. Tools read the effective values at call time, so a change applies to the next
call. Every number is bounded so a stored override can never overflow a date or duration later.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar, cast, get_args

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from sqlmodel import Session

from revops_core.db import utcnow
from revops_core.errors import ValidationFailed
from revops_core.params import MAX_COUNT
from revops_cs.analytics import sla
from revops_cs.analytics.churn_rules import ChurnRules
from revops_cs.analytics.health import BAND_NAMES
from revops_cs.models.retention import CsThresholdConfig

M = TypeVar("M", bound=BaseModel)
Severity = Literal["urgent", "high", "normal", "low"]
MAX_SLA_MINUTES = 366 * 24 * 60
"""A resolution target longer than a year is a typo, not a target."""


class ExpansionSignals(BaseModel):
    seat_utilisation_pct: float = Field(80.0, gt=0, le=1000)
    usage_growth_pct: float = Field(20.0, gt=0, le=10_000, description="Usage up quarter on quarter, %.")
    plan_limit_events: list[str] = Field(default_factory=lambda: ["plan_limit_hit"], max_length=20)
    health_min: float = Field(80.0, ge=0, le=100)
    promoter_min_score: int = Field(9, ge=0, le=10)
    renewal_min_days: int = Field(60, ge=0, le=730)
    renewal_max_days: int = Field(120, ge=1, le=730)
    max_snapshot_age_days: int = Field(
        30, ge=0, le=3650, description="An older health snapshot is not used for healthy_promoter."
    )


def _default_renewal_priors() -> dict[str, float]:
    return {"excellent": 0.95, "good": 0.85, "at_risk": 0.6, "critical": 0.3}


class RenewalForecast(BaseModel):
    """Renewal odds by health band: p = (renewed + k·m)/(n + k) over the tenant's own renewal outcomes
    (REFERENCE: Revenue), with prior mean m per band (our documented defaults — an assumption) and
    prior strength k pseudo-outcomes. An override of some bands keeps the others' defaults."""

    probability_by_band: dict[str, float] = Field(
        default_factory=_default_renewal_priors, description="Prior mean p(renew) per band (assumption)."
    )
    prior_strength: float = Field(10.0, gt=0, le=10_000, description="Pseudo-outcomes behind each prior (k).")
    max_snapshot_age_days: int = Field(
        30, ge=0, le=3650, description="An older health snapshot gives no band (and no probability)."
    )

    @field_validator("probability_by_band", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        return {**_default_renewal_priors(), **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _probabilities(self) -> RenewalForecast:
        unknown = sorted(set(self.probability_by_band) - set(BAND_NAMES))
        if unknown:
            raise ValueError(f"unknown band(s) {', '.join(unknown)}; bands are {', '.join(BAND_NAMES)}")
        for band, p in self.probability_by_band.items():
            if not 0 <= p <= 1:
                raise ValueError(f"probability for {band} must be within 0..1")
        return self


class Revenue(BaseModel):
    gross_margin_pct: float = Field(80.0, gt=0, le=100, description="Gross margin used for LTV.")


class Onboarding(BaseModel):
    value_event: str = Field("first_value", min_length=1, max_length=100, description="First-value event.")
    at_risk_days: int = Field(
        7, ge=0, le=365, description="Open milestones due within this many days are at risk."
    )
    certification_modules: list[str] = Field(default_factory=list, max_length=50)
    mature_days: int = Field(
        365, ge=1, le=3650, description="Lifecycle segment: adoption turns mature at this contract age."
    )


def _default_first_response_minutes() -> dict[Severity, int]:
    return cast(dict[Severity, int], {p: fr for p, (fr, _) in sla.DEFAULT_TARGETS_MINUTES.items()})


def _default_resolution_minutes() -> dict[Severity, int]:
    return cast(dict[Severity, int], {p: res for p, (_, res) in sla.DEFAULT_TARGETS_MINUTES.items()})


class Sla(BaseModel):
    """Support SLA targets in minutes by priority (REFERENCE: Support SLA) — the one source for ticket
    compliance, ticket escalation deadlines and escalations alike."""

    first_response_minutes: dict[Severity, int] = Field(default_factory=_default_first_response_minutes)
    resolution_minutes: dict[Severity, int] = Field(default_factory=_default_resolution_minutes)

    @model_validator(mode="after")
    def _every_severity(self) -> Sla:
        # An override replaces the whole mapping: a missing priority would leave no deadline.
        for name, minutes in (
            ("first_response_minutes", self.first_response_minutes),
            ("resolution_minutes", self.resolution_minutes),
        ):
            missing = [s for s in get_args(Severity) if s not in minutes]
            if missing:
                raise ValueError(f"{name} needs every priority; missing {', '.join(missing)}")
            if not all(1 <= m <= MAX_SLA_MINUTES for m in minutes.values()):
                raise ValueError(f"{name} must be within 1..{MAX_SLA_MINUTES}")
        return self


class ChurnModelConfig(BaseModel):
    min_positives: int = Field(30, ge=2, le=MAX_COUNT)
    min_negatives: int = Field(30, ge=2, le=MAX_COUNT)
    folds: int = Field(5, ge=2, le=20)
    l2: float = Field(1.0, ge=0, le=1e6, description="L2 penalty on standardised coefficients.")


Section = Literal["churn_rules", "expansion", "renewal", "revenue", "onboarding", "sla", "churn_model"]
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


class ConfigOut(BaseModel):
    section: Section = Field(description="Config section.")
    values: dict[str, Any] = Field(description="Effective values (defaults overlaid with overrides).")


def show(session: Session, section: Section) -> ConfigOut:
    return ConfigOut(section=section, values=load(session, SECTIONS[section]).model_dump())


def save(session: Session, section: Section, values: dict[str, Any], actor: str) -> ConfigOut:
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
            field=".".join(["values", *(str(p) for p in first["loc"])]),
            hint="Correct the value; nothing was changed.",
        ) from None
    if row is None:
        row = CsThresholdConfig(section=section, values="{}", updated_by=actor)
    row.values = json.dumps(merged, sort_keys=True)
    row.updated_by = actor
    row.updated_at = utcnow()
    session.add(row)
    return ConfigOut(section=section, values=effective.model_dump())


def _section_of(model: type[BaseModel]) -> str:
    for name, cls in SECTIONS.items():
        if cls is model:
            return name
    raise KeyError(model.__name__)
