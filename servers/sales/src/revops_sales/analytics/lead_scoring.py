"""Lead scoring maths (pure): fit against the ideal customer profile, and intent from engagement.

Fit (0–100) = 100·Σ w(matched) / Σ w(evaluated). A criterion whose lead attribute is unknown is
not evaluated: its weight is spread over the others (as the health score does) and it is listed as
unknown, so a lead with no data is null, not 0. Fit is also null when less than `MIN_KNOWN_SHARE` of
the profile's weight could be evaluated: two known criteria out of four would otherwise read as a
confident 100 that says more about the missing data than about the lead.

Intent (0–100): over the `window_days` before and including `as_of`, the points of each
(kind, day) are first capped at that kind's daily cap, then decayed by age in whole days,
`points·0.5^(age/half_life_days)`, summed and capped at 100. REFERENCE.md: 30-day window, each
activity type capped per day; MQL when intent ≥ 50 and fit ≥ 40 (all configurable).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

FIT_FIELDS = ("industry", "country", "region", "source", "employees", "title")
MIN_KNOWN_SHARE = 0.5
"""Fit needs at least this share of the profile's weight evaluated (known attributes)."""
"""Lead attributes an ICP criterion may test: equality fields, `employees` (a range), `title` (keywords)."""

DEFAULT_HALF_LIFE_DAYS = 14.0
DEFAULT_WINDOW_DAYS = 30
DEFAULT_DAILY_CAP = 20.0
MQL_FIT = 40.0
MQL_INTENT = 50.0


@dataclass(frozen=True)
class Criterion:
    field: str
    weight: float
    values: tuple[str, ...] = ()  # equality fields: any of these (case-insensitive)
    keywords: tuple[str, ...] = ()  # title: any keyword as a substring (case-insensitive)
    min: int | None = None  # employees: inclusive range; either bound may be open
    max: int | None = None

    def label(self) -> str:
        if self.field == "employees":
            low = "" if self.min is None else str(self.min)
            high = "" if self.max is None else str(self.max)
            return f"employees {low}–{high}"
        if self.field == "title":
            return "title has " + " / ".join(self.keywords)
        return f"{self.field} in " + ", ".join(self.values)

    def test(self, value: object) -> bool | None:
        """True/False when the lead's value is known, None when it is not."""
        if value is None or value == "":
            return None
        if self.field == "employees":
            number = int(str(value))
            return (self.min is None or number >= self.min) and (self.max is None or number <= self.max)
        text = str(value).casefold()
        if self.field == "title":
            return any(k.casefold() in text for k in self.keywords)
        return text in {v.casefold() for v in self.values}


@dataclass(frozen=True)
class Fit:
    score: float | None
    matched: list[str]
    unmatched: list[str]
    unknown: list[str]
    known_share: float | None = None
    """Share of the profile's weight that could be evaluated; None without criteria."""


def fit(lead: Mapping[str, object], criteria: Sequence[Criterion]) -> Fit:
    matched: list[str] = []
    unmatched: list[str] = []
    unknown: list[str] = []
    got = total = 0.0
    for criterion in criteria:
        outcome = criterion.test(lead.get(criterion.field))
        if outcome is None:
            unknown.append(criterion.label())
            continue
        total += criterion.weight
        if outcome:
            got += criterion.weight
            matched.append(criterion.label())
        else:
            unmatched.append(criterion.label())
    weight = sum(c.weight for c in criteria)
    known_share = total / weight if weight > 0 else None
    enough = known_share is not None and known_share >= MIN_KNOWN_SHARE
    score = round(100 * got / total, 2) if total > 0 and enough else None
    return Fit(score, matched, unmatched, unknown, known_share)


@dataclass(frozen=True)
class IntentSettings:
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    window_days: int = DEFAULT_WINDOW_DAYS
    default_daily_cap: float = DEFAULT_DAILY_CAP
    daily_caps: Mapping[str, float] = field(default_factory=dict)
    mql_fit: float = MQL_FIT
    mql_intent: float = MQL_INTENT

    def cap(self, kind: str) -> float:
        return self.daily_caps.get(kind, self.default_daily_cap)


@dataclass(frozen=True)
class Intent:
    score: float
    by_kind: dict[str, float]  # decayed points each kind contributed (before the cap at 100)


def intent(events: Iterable[tuple[str, float, date]], as_of: date, settings: IntentSettings) -> Intent:
    """`events` are (kind, points, day); days after `as_of` or outside the window are ignored."""
    per_day: dict[tuple[str, date], float] = defaultdict(float)
    for kind, points, day in events:
        age = (as_of - day).days
        if 0 <= age < settings.window_days:
            per_day[(kind, day)] += points
    by_kind: dict[str, float] = defaultdict(float)
    for (kind, day), points in per_day.items():
        age = (as_of - day).days
        by_kind[kind] += min(points, settings.cap(kind)) * 0.5 ** (age / settings.half_life_days)
    total = sum(by_kind.values())
    return Intent(round(min(100.0, total), 2), {k: round(v, 2) for k, v in sorted(by_kind.items())})


def is_mql(fit_score: float | None, intent_score: float | None, settings: IntentSettings) -> bool:
    if fit_score is None or intent_score is None:
        return False
    return fit_score >= settings.mql_fit and intent_score >= settings.mql_intent


def priority(fit_score: float | None, intent_score: float | None) -> float:
    """Call-list order: (fit + intent)/2, an unknown score adding nothing (it is shown as null)."""
    known = [s for s in (fit_score, intent_score) if s is not None]
    return round(sum(known) / 2, 2) if known else 0.0
