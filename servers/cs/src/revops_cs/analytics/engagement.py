"""Engagement maths: active users, stickiness, change against a client's own baseline. No I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta


def active_users(logins: Iterable[tuple[date, str]], start: date, end: date) -> set[str]:
    """Distinct users with a login on a day in [start, end]."""
    return {user for day, user in logins if start <= day <= end}


def mean_daily_active(logins: Iterable[tuple[date, str]], start: date, end: date) -> float:
    """Average number of distinct users per calendar day over [start, end] (days without logins count 0)."""
    days = (end - start).days + 1
    if days <= 0:
        raise ValueError("empty period")
    per_day: dict[date, set[str]] = {}
    for day, user in logins:
        if start <= day <= end:
            per_day.setdefault(day, set()).add(user)
    return sum(len(users) for users in per_day.values()) / days


def pct_change(current: float, previous: float) -> float | None:
    """Percent change from previous to current; None when previous is 0 (undefined)."""
    if previous == 0:
        return None
    return 100.0 * (current - previous) / previous


def weekly_totals(events: Iterable[tuple[date, float]], end: date, weeks: int) -> list[float]:
    """Totals per 7-day bucket, oldest first; the last bucket ends at `end` (inclusive)."""
    buckets = [0.0] * weeks
    first = end - timedelta(days=7 * weeks - 1)
    for day, value in events:
        if first <= day <= end:
            buckets[(day - first).days // 7] += value
    return buckets


@dataclass(frozen=True)
class BaselineChange:
    recent_mean: float
    baseline_mean: float
    baseline_std: float
    pct_change: float | None
    z_score: float | None
    dropped: bool


def baseline_change(
    weekly: Sequence[float], *, recent_weeks: int = 4, drop_threshold_pct: float = 30.0
) -> BaselineChange:
    """Mean of the last `recent_weeks` against the mean of the weeks before (the client's own baseline).

    z = (recent − baseline mean)/baseline sample std (None when the std is 0); a drop is flagged when
    the mean fell by at least `drop_threshold_pct` percent.
    """
    if len(weekly) <= recent_weeks:
        raise ValueError("need baseline weeks before the recent weeks")
    recent = list(weekly[-recent_weeks:])
    base = list(weekly[:-recent_weeks])
    rm = sum(recent) / len(recent)
    bm = sum(base) / len(base)
    std = math.sqrt(sum((x - bm) ** 2 for x in base) / (len(base) - 1)) if len(base) > 1 else 0.0
    change = pct_change(rm, bm)
    z = (rm - bm) / std if std > 0 else None
    return BaselineChange(rm, bm, std, change, z, change is not None and change <= -drop_threshold_pct)


def stickiness(dau: float, mau: int) -> float | None:
    """DAU/MAU in percent; None when nobody was active in the month."""
    return None if mau == 0 else 100.0 * dau / mau


def by_key_counts(rows: Iterable[tuple[str, str]]) -> Mapping[str, tuple[int, int]]:
    """(events, distinct users) per key from (key, user) rows."""
    events: dict[str, int] = {}
    users: dict[str, set[str]] = {}
    for key, user in rows:
        events[key] = events.get(key, 0) + 1
        users.setdefault(key, set()).add(user)
    return {k: (events[k], len(users[k])) for k in events}
