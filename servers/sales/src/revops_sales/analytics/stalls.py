"""Stalled and slipping deals (REFERENCE.md, Sales), from plain values."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

STALL_FACTOR = 1.5
"""A deal is stalled past this multiple of its stage's median days in stage over won deals."""


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def median_days_by_stage(durations: Iterable[tuple[int, float]]) -> dict[int, float]:
    """Median days in stage per stage id, from (stage id, days spent) of won deals."""
    by_stage: dict[int, list[float]] = {}
    for stage_id, days in durations:
        by_stage.setdefault(stage_id, []).append(days)
    return {stage_id: float(statistics.median(days)) for stage_id, days in by_stage.items()}


@dataclass(frozen=True)
class Verdict:
    stalled: list[str]
    slipping: list[str]
    not_evaluated: list[str]


def judge(
    *,
    days_in_stage: float,
    stage_median: float | None,
    close_date: date | None,
    pushed_this_quarter: int,
    as_of: date,
    factor: float = STALL_FACTOR,
) -> Verdict:
    stalled: list[str] = []
    slipping: list[str] = []
    missing: list[str] = []
    if stage_median is None:
        missing.append("days in stage: no won deal has passed through this stage yet")
    elif days_in_stage > factor * stage_median:
        median = f"{stage_median:.1f}"
        stalled.append(
            f"{days_in_stage:.0f} days in stage > {factor:g} × the median {median} days of won deals"
        )
    if close_date is None:
        missing.append("close date: none set")
    elif close_date < as_of:
        slipping.append(f"close date {close_date.isoformat()} has passed while the deal is open")
    if pushed_this_quarter:
        slipping.append(f"close date moved later {pushed_this_quarter} time(s) this quarter")
    return Verdict(stalled, slipping, missing)
