"""Explainable churn-risk rules (REFERENCE: Churn risk, rules). Pure: facts in, points out.

Each rule returns the points it awarded and the evidence (numbers and dates), so an answer can
list every point. The score is the sum, capped at 100; levels come from the configured thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, model_validator

Level = Literal["high", "medium", "low"]
RULES: tuple[str, ...] = (
    "usage_drop",
    "no_login",
    "support_load",
    "nps_detractor",
    "renewal_low_health",
    "failed_payment",
)


class ChurnRules(BaseModel):
    """The rules' points and thresholds (REFERENCE: Churn risk, rules); a config section.

    Declared with the rules it parameterises (pure settings, no storage): `services.thresholds`
    loads the effective values from `cs_threshold_config`.
    """

    usage_drop_pct: float = Field(30.0, gt=0, le=100, description="Usage fall month on month, percent.")
    usage_drop_points: int = Field(25, ge=0, le=100)
    no_login_days: int = Field(14, ge=1, le=365)
    no_login_points: int = Field(20, ge=0, le=100)
    tickets_30d: int = Field(3, ge=1, le=10_000, description="Tickets opened in the last 30 days.")
    tickets_points: int = Field(15, ge=0, le=100)
    detractor_max_score: int = Field(6, ge=0, le=10, description="NPS answers at or below are detractors.")
    detractor_points: int = Field(15, ge=0, le=100)
    renewal_window_days: int = Field(90, ge=1, le=730)
    renewal_health_below: float = Field(70.0, ge=0, le=100)
    renewal_points: int = Field(15, ge=0, le=100)
    renewal_health_max_age_days: int = Field(
        30, ge=0, le=730, description="An older health snapshot is stale: the renewal rule is not scored."
    )
    failed_payment_days: int = Field(
        30, ge=1, le=365, description="A failed payment within this many days counts (default 30)."
    )
    failed_payment_points: int = Field(10, ge=0, le=100)
    high_at: int = Field(60, ge=1, le=100, description="Score at or above: high risk.")
    medium_at: int = Field(30, ge=1, le=100, description="Score at or above (and below high_at): medium.")

    @model_validator(mode="after")
    def _levels_ordered(self) -> ChurnRules:
        if self.medium_at >= self.high_at:
            raise ValueError("medium_at must be below high_at")
        return self


@dataclass(frozen=True)
class RiskFacts:
    """What the rules look at, all measured as of `as_of` from stored rows."""

    as_of: date
    usage_current: int  # usage events in the 30 days up to as_of
    usage_previous: int  # usage events in the 30 days before that
    last_login: date | None
    tickets_30d: int
    urgent_escalations: list[tuple[int, date, str]] = field(default_factory=list)  # id, opened, status
    latest_nps: tuple[int, date] | None = None
    renewal_date: date | None = None
    health: tuple[float, str, date] | None = None  # score, band, snapshot date
    failed_payments: list[date] = field(default_factory=list)  # within the configured window


@dataclass(frozen=True)
class RuleHit:
    rule: str
    points: int
    max_points: int
    evidence: str


def evaluate(facts: RiskFacts, cfg: ChurnRules) -> list[RuleHit]:
    """Every rule with the points it awarded (0 when not triggered) and why."""
    return [
        _usage_drop(facts, cfg),
        _no_login(facts, cfg),
        _support(facts, cfg),
        _detractor(facts, cfg),
        _renewal(facts, cfg),
        _failed_payment(facts, cfg),
    ]


def score(hits: list[RuleHit]) -> int:
    return min(100, sum(h.points for h in hits))


def level(points: int, cfg: ChurnRules) -> Level:
    if points >= cfg.high_at:
        return "high"
    if points >= cfg.medium_at:
        return "medium"
    return "low"


def _usage_drop(f: RiskFacts, cfg: ChurnRules) -> RuleHit:
    pts = cfg.usage_drop_points
    if f.usage_previous == 0:
        return RuleHit(
            "usage_drop", 0, pts, "No usage events in the previous 30 days: no month-on-month base."
        )
    change = 100.0 * (f.usage_current - f.usage_previous) / f.usage_previous
    text = (
        f"Usage events: {f.usage_current} in the last 30 days vs {f.usage_previous} in the 30 days before "
        f"({change:+.1f} %; threshold −{cfg.usage_drop_pct:g} %)."
    )
    return RuleHit("usage_drop", pts if change <= -cfg.usage_drop_pct else 0, pts, text)


def _no_login(f: RiskFacts, cfg: ChurnRules) -> RuleHit:
    pts = cfg.no_login_points
    if f.last_login is None:
        # Never having logged in (or no login data at all) is missing data, not evidence of risk.
        return RuleHit("no_login", 0, pts, "Not evaluated: no login event recorded up to the as-of date.")
    days = (f.as_of - f.last_login).days
    text = f"Last login {f.last_login.isoformat()}, {days} days before {f.as_of.isoformat()} "
    text += f"(threshold {cfg.no_login_days} days)."
    return RuleHit("no_login", pts if days >= cfg.no_login_days else 0, pts, text)


def _support(f: RiskFacts, cfg: ChurnRules) -> RuleHit:
    pts = cfg.tickets_points
    parts = [f"{f.tickets_30d} tickets opened in the last 30 days (threshold {cfg.tickets_30d})"]
    if f.urgent_escalations:
        listed = ", ".join(f"#{i} opened {d.isoformat()} ({s})" for i, d, s in f.urgent_escalations)
        parts.append(f"urgent escalation(s): {listed}")
    else:
        parts.append("no urgent escalation open or opened in the last 30 days")
    hit = f.tickets_30d >= cfg.tickets_30d or bool(f.urgent_escalations)
    return RuleHit("support_load", pts if hit else 0, pts, "; ".join(parts) + ".")


def _detractor(f: RiskFacts, cfg: ChurnRules) -> RuleHit:
    pts = cfg.detractor_points
    if f.latest_nps is None:
        return RuleHit("nps_detractor", 0, pts, "No NPS answer recorded.")
    value, when = f.latest_nps
    text = f"Latest NPS answer {value} on {when.isoformat()} (detractor at ≤ {cfg.detractor_max_score})."
    return RuleHit("nps_detractor", pts if value <= cfg.detractor_max_score else 0, pts, text)


def _renewal(f: RiskFacts, cfg: ChurnRules) -> RuleHit:
    pts = cfg.renewal_points
    if f.renewal_date is None:
        return RuleHit("renewal_low_health", 0, pts, "No renewal date recorded.")
    days = (f.renewal_date - f.as_of).days
    when = f"Renewal {f.renewal_date.isoformat()} in {days} days (window {cfg.renewal_window_days})"
    if not 0 <= days <= cfg.renewal_window_days:
        return RuleHit("renewal_low_health", 0, pts, when + ": outside the window.")
    if f.health is None:
        return RuleHit("renewal_low_health", 0, pts, when + "; no health snapshot, so not scored.")
    value, band, snap = f.health
    age = (f.as_of - snap).days
    seen = f"{when}; latest health {value:.1f} ({band}) on {snap.isoformat()}, {age} days old"
    if age > cfg.renewal_health_max_age_days:
        stale = f" (older than {cfg.renewal_health_max_age_days}), so not scored: run calculate_health_score."
        return RuleHit("renewal_low_health", 0, pts, seen + stale)
    text = f"{seen}, threshold < {cfg.renewal_health_below:g}."
    return RuleHit("renewal_low_health", pts if value < cfg.renewal_health_below else 0, pts, text)


def _failed_payment(f: RiskFacts, cfg: ChurnRules) -> RuleHit:
    pts = cfg.failed_payment_points
    if not f.failed_payments:
        return RuleHit(
            "failed_payment", 0, pts, f"No failed payment in the last {cfg.failed_payment_days} days."
        )
    dates = ", ".join(d.isoformat() for d in f.failed_payments)
    return RuleHit(
        "failed_payment", pts, pts, f"Failed payment(s) in the last {cfg.failed_payment_days} days: {dates}."
    )
