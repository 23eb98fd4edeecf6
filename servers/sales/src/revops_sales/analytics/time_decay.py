"""Time decay of a deal's win probability (REFERENCE.md, Sales).

    p · 0.5^(max(0, days_in_stage − median_days_in_stage) / H)

The median is over won deals that passed through the stage (what "typical" means for a stage a
deal should leave); a deal no older in its stage than that keeps its probability, and each further
half-life H halves it. A stage no won deal has left has no median: its deals keep p, and the
forecast says so. A close date already passed is flagged (overdue), not decayed — REFERENCE keeps
that a flag, so a stale close date does not silently shrink the forecast.
"""

from __future__ import annotations

import math

DEFAULT_HALF_LIFE_DAYS = 30
"""H when the caller asks for decay without giving one."""


def decayed(
    probability: float, days_in_stage: float, median_days: float | None, half_life_days: float
) -> float:
    """p · 0.5^(max(0, days_in_stage − median)/H); unchanged when the stage has no median yet."""
    if median_days is None or half_life_days <= 0:
        return probability
    overdue = max(0.0, days_in_stage - median_days)
    return probability * math.pow(0.5, overdue / half_life_days)
