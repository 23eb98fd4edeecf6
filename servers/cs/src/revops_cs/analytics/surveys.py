"""Survey maths (REFERENCE.md "Surveys"): NPS with its margin of error, CSAT, CES. No I/O.

NPS = 100·(P − D)/N with promoters 9–10 and detractors 0–6. Each answer is a draw of +1
(promoter), 0 (passive) or −1 (detractor); its variance is `p_P + p_D − (p_P − p_D)²`, so the
standard error of NPS is `100·√(var/N)` and the 95 % margin of error is 1.96 times that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import fmean

SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
"""Valid score range per survey kind (inclusive)."""

Z_95 = 1.96


def nps_category(score: int) -> str:
    """promoter (9–10), passive (7–8) or detractor (0–6)."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


@dataclass(frozen=True)
class Nps:
    responses: int
    promoters: int
    passives: int
    detractors: int
    score: float
    variance: float
    margin_of_error: float

    @property
    def low(self) -> float:
        return max(-100.0, self.score - self.margin_of_error)

    @property
    def high(self) -> float:
        return min(100.0, self.score + self.margin_of_error)


def nps(scores: Iterable[int]) -> Nps | None:
    """NPS of 0–10 answers with variance and 95 % margin of error; None when there are none."""
    values = list(scores)
    n = len(values)
    if n == 0:
        return None
    promoters = sum(1 for s in values if s >= 9)
    detractors = sum(1 for s in values if s <= 6)
    p_p, p_d = promoters / n, detractors / n
    variance = p_p + p_d - (p_p - p_d) ** 2
    return Nps(
        responses=n,
        promoters=promoters,
        passives=n - promoters - detractors,
        detractors=detractors,
        score=100.0 * (p_p - p_d),
        variance=variance,
        margin_of_error=Z_95 * math.sqrt(variance / n) * 100.0,
    )


def csat(scores: Iterable[int]) -> float | None:
    """CSAT: percentage of 1–5 answers that are 4 or 5; None without answers."""
    values = list(scores)
    if not values:
        return None
    return 100.0 * sum(1 for s in values if s >= 4) / len(values)


def ces(scores: Iterable[int]) -> float | None:
    """CES: mean of 1–7 answers; None without answers."""
    values = list(scores)
    return fmean(values) if values else None
