"""Support SLA maths (REFERENCE.md "Support SLA"): response/resolution times, compliance, backlog.

A ticket *meets* a target when its actual time is within it, *breaches* when the actual time exceeds
it, and an unanswered/unsolved ticket already past its target at `now` also counts as breached.
Tickets still inside their target with no answer yet are *pending* and left out of compliance:
compliance = met / (met + breached). No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_TARGETS_MINUTES: dict[str, tuple[int, int]] = {
    "urgent": (10, 120),
    "high": (30, 480),
    "normal": (240, 1440),
    "low": (480, 4320),
}
"""REFERENCE defaults (first response, resolution) in minutes; a team overrides them with
`configure_cs_thresholds section=sla` (the one SLA source for tickets and escalations)."""

AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<1d", 1),
    ("1-3d", 3),
    ("3-7d", 7),
    ("7-30d", 30),
    (">30d", float("inf")),
)
"""Backlog age buckets: label and exclusive upper bound in days."""


@dataclass(frozen=True)
class Target:
    first_response: timedelta
    resolution: timedelta


@dataclass(frozen=True)
class TicketTimes:
    """What the SLA maths needs of one ticket (times already resolved from comments/metrics)."""

    priority: str
    created_at: datetime
    first_response_at: datetime | None
    solved_at: datetime | None


@dataclass
class Compliance:
    met: int = 0
    breached: int = 0
    pending: int = 0

    @property
    def rate(self) -> float | None:
        judged = self.met + self.breached
        return None if judged == 0 else 100.0 * self.met / judged

    def judge(self, created: datetime, done: datetime | None, target: timedelta, now: datetime) -> None:
        if done is not None:
            if done - created <= target:
                self.met += 1
            else:
                self.breached += 1
        elif now - created > target:
            self.breached += 1
        else:
            self.pending += 1


@dataclass
class PriorityCompliance:
    first_response: Compliance = field(default_factory=Compliance)
    resolution: Compliance = field(default_factory=Compliance)


def combined(rows: Iterable[PriorityCompliance]) -> PriorityCompliance:
    """Counts of several priorities added up: the overall compliance."""
    total = PriorityCompliance()
    for row in rows:
        for mine, tot in ((row.first_response, total.first_response), (row.resolution, total.resolution)):
            tot.met += mine.met
            tot.breached += mine.breached
            tot.pending += mine.pending
    return total


def minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0


def compliance_by_priority(
    tickets: Iterable[TicketTimes], targets: dict[str, Target], now: datetime
) -> dict[str, PriorityCompliance]:
    """Met/breached/pending counts per priority for first response and resolution."""
    out: dict[str, PriorityCompliance] = {}
    for t in tickets:
        target = targets[t.priority]
        row = out.setdefault(t.priority, PriorityCompliance())
        # A response after `now` is not known yet at `now`: judge as unanswered.
        answered = t.first_response_at if t.first_response_at and t.first_response_at <= now else None
        solved = t.solved_at if t.solved_at and t.solved_at <= now else None
        row.first_response.judge(t.created_at, answered, target.first_response, now)
        row.resolution.judge(t.created_at, solved, target.resolution, now)
    return out


@dataclass(frozen=True)
class Distribution:
    count: int
    median: float | None
    p90: float | None
    mean: float | None


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (Hyndman–Fan type 7, numpy's default)."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def distribution(values: Sequence[float]) -> Distribution:
    """Median, 90th percentile (linear interpolation) and mean; None fields when empty."""
    if not values:
        return Distribution(0, None, None, None)
    ordered = sorted(float(v) for v in values)
    return Distribution(
        count=len(ordered),
        median=percentile(ordered, 0.5),
        p90=percentile(ordered, 0.9),
        mean=sum(ordered) / len(ordered),
    )


def age_bucket(age: timedelta) -> str:
    days = age.total_seconds() / 86_400
    for label, upper in AGE_BUCKETS:
        if days < upper:
            return label
    return AGE_BUCKETS[-1][0]
