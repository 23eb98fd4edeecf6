"""Pipeline metrics (REFERENCE.md, Sales): win rates, cycle, velocity, coverage, attainment.

Every function returns None where its denominator is missing or zero: no data is not a number.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def win_rate(won: float, lost: float) -> float | None:
    """won / (won + lost), by count or by value."""
    return ratio(won, won + lost)


def median_cycle_days(cycles: Sequence[float]) -> float | None:
    """Median days from created to closed over won deals."""
    return float(statistics.median(cycles)) if cycles else None


def velocity(
    opportunities: int, average_deal: float | None, rate: float | None, cycle_days: float | None
) -> float | None:
    """(#opportunities × average deal size × win rate) / cycle days: value per day."""
    if average_deal is None or rate is None or not cycle_days:
        return None
    return opportunities * average_deal * rate / cycle_days


def coverage(open_in_period: int, quota: int, won: int) -> float | None:
    """Open pipeline closing in the period ÷ (quota − won to date); None once the quota is met."""
    remaining = quota - won
    return None if remaining <= 0 else open_in_period / remaining


def attainment(won: int, quota: int) -> float | None:
    return ratio(won, quota)
