"""Stalled and slipping deals (REFERENCE.md, Sales), from plain values."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

STALL_FACTOR = 1.5
"""A deal is stalled past this multiple of its stage's median days in stage over won deals."""
IDLE_DAYS = 14
"""A deal is stalled after this many days without a logged activity (REFERENCE.md: config, 14)."""
MIN_STAGE_SAMPLE = 3
"""Won deals that must have left a stage before its median days in stage is used: a median of one
or two deals says more about those deals than about the stage."""


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def median_days_by_stage(durations: Iterable[tuple[int, float]]) -> dict[int, float]:
    """Median days in stage per stage id, from (stage id, days spent) of won deals."""
    by_stage: dict[int, list[float]] = {}
    for stage_id, days in durations:
        by_stage.setdefault(stage_id, []).append(days)
    return {stage_id: float(statistics.median(days)) for stage_id, days in by_stage.items()}


def medians_and_samples(durations: Iterable[tuple[int, float]]) -> tuple[dict[int, float], dict[int, int]]:
    """`median_days_by_stage` and `sample_sizes` in one pass over the stays."""
    by_stage: dict[int, list[float]] = {}
    for stage_id, days in durations:
        by_stage.setdefault(stage_id, []).append(days)
    return (
        {stage_id: float(statistics.median(days)) for stage_id, days in by_stage.items()},
        {stage_id: len(days) for stage_id, days in by_stage.items()},
    )


def sample_sizes(durations: Iterable[tuple[int, float]]) -> dict[int, int]:
    """How many won-deal stays each stage's median is taken over."""
    sizes: dict[int, int] = {}
    for stage_id, _ in durations:
        sizes[stage_id] = sizes.get(stage_id, 0) + 1
    return sizes


@dataclass(frozen=True)
class Push:
    """The close date moved later: from `old` to `new`."""

    old: date
    new: date


@dataclass(frozen=True)
class Verdict:
    stalled: list[str]
    slipping: list[str]
    not_evaluated: list[str]


def _stage_rule(
    days_in_stage: float, median: float | None, sample: int, min_sample: int, factor: float
) -> tuple[list[str], list[str]]:
    if median is None or sample == 0:
        return [], ["days in stage: no won deal has passed through this stage yet"]
    if sample < min_sample:
        return [], [
            f"days in stage: only {sample} won deal(s) left this stage; the median needs {min_sample}"
        ]
    if days_in_stage > factor * median:
        return [
            f"{days_in_stage:.0f} days in stage > {factor:g} × the median {median:.1f} days of won deals"
        ], []
    return [], []


def judge(
    *,
    days_in_stage: float,
    stage_median: float | None,
    stage_sample: int,
    close_date: date | None,
    pushes: list[Push],
    days_idle: float,
    idle_since: str,
    as_of: date,
    factor: float = STALL_FACTOR,
    min_sample: int = MIN_STAGE_SAMPLE,
    idle_days: int = IDLE_DAYS,
) -> Verdict:
    """`pushes`: close-date moves later this quarter, oldest first; `days_idle`: days since
    `idle_since` (the last logged activity, or the deal's creation when it has none)."""
    stalled, missing = _stage_rule(days_in_stage, stage_median, stage_sample, min_sample, factor)
    if days_idle > idle_days:
        stalled.append(f"no logged activity for {days_idle:.0f} days (> {idle_days}) since {idle_since}")
    slipping: list[str] = []
    if close_date is None:
        missing.append("close date: none set")
    elif close_date < as_of:
        slipping.append(f"close date {close_date.isoformat()} has passed while the deal is open")
    if pushes:
        last = pushes[-1]
        slipping.append(
            f"close date moved later {len(pushes)} time(s) this quarter"
            f" (latest {last.old.isoformat()} → {last.new.isoformat()})"
        )
    return Verdict(stalled, slipping, missing)
