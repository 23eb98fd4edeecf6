"""Segmentation maths (REFERENCE.md): ABC value tiers, RFM quintiles, lifecycle segment. No I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from fractions import Fraction
from typing import TypeVar

K = TypeVar("K")


def abc_tiers(values: Mapping[K, int], *, a_share: float = 0.80, b_share: float = 0.15) -> dict[K, str]:
    """ABC by cumulative share of value, largest first: an item's tier is decided by the running share
    *before* it — A while < 80 %, B while < 95 %, C for the rest. So the item that crosses 80 % is A
    (and the one crossing 95 % is B); an item starting exactly at 80 % is B, exactly at 95 % is C.
    Shares are compared exactly (fractions), so 80 % + 15 % is 95 %, not 95.000…1 %.
    Ties keep the input order (stable sort)."""
    total = sum(values.values())
    if total <= 0:
        return dict.fromkeys(values, "C")
    a_cut = Fraction(str(a_share))
    b_cut = a_cut + Fraction(str(b_share))
    out: dict[K, str] = {}
    running = 0
    for key, value in sorted(values.items(), key=lambda kv: -kv[1]):
        share_before = Fraction(running, total)
        out[key] = "A" if share_before < a_cut else "B" if share_before < b_cut else "C"
        running += value
    return out


def threshold_tiers(values: Mapping[K, int], *, a_min: int, b_min: int) -> dict[K, str]:
    """Fixed thresholds: A ≥ a_min, B ≥ b_min, else C."""
    return {k: "A" if v >= a_min else "B" if v >= b_min else "C" for k, v in values.items()}


def quintile_scores(values: Mapping[K, float], *, higher_is_better: bool = True) -> dict[K, int]:
    """Scores 1–5 by rank-then-cut: equal values get the same (average) rank, so ties never split.

    The average rank r (1..n) maps to `ceil(5·r/n)`; with `higher_is_better` the largest values score 5.
    """
    n = len(values)
    if n == 0:
        return {}
    ordered = sorted(values.items(), key=lambda kv: kv[1] if higher_is_better else -kv[1])
    ranks: dict[K, float] = {}
    i = 0
    while i < n:
        j = i
        while j + 1 < n and ordered[j + 1][1] == ordered[i][1]:
            j += 1
        avg = (i + 1 + j + 1) / 2
        for k in range(i, j + 1):
            ranks[ordered[k][0]] = avg
        i = j + 1
    return {k: max(1, min(5, math.ceil(5 * r / n))) for k, r in ranks.items()}


def rfm(
    recency_days: Mapping[K, float], frequency: Mapping[K, float], monetary: Mapping[K, float]
) -> dict[K, tuple[int, int, int]]:
    """(R, F, M) quintile scores; the most recent (fewest days) scores R = 5."""
    r = quintile_scores(recency_days, higher_is_better=False)
    f = quintile_scores(frequency)
    m = quintile_scores(monetary)
    return {k: (r[k], f[k], m[k]) for k in recency_days}


def lifecycle_segment(
    *,
    stage: str,
    contract_start: date | None,
    renewal_date: date | None,
    as_of: date,
    onboarding_days: int = 30,
    renewal_window_days: int = 90,
    mature_days: int = 365,
) -> str:
    """onboarding (first 30 days) · adoption · mature · renewal window (≤ 90 days to renewal) · churned.

    Adoption vs mature: mature once the contract is `mature_days` old (config: section onboarding,
    default a year). Without a contract start the stored stage decides between onboarding/adoption/mature.
    """
    if stage == "churned":
        return "churned"
    if renewal_date is not None and 0 <= (renewal_date - as_of).days <= renewal_window_days:
        return "renewal_window"
    if contract_start is None:
        return stage if stage in ("onboarding", "adoption", "mature") else "adoption"
    age = (as_of - contract_start).days
    if age < onboarding_days:
        return "onboarding"
    return "mature" if age >= mature_days else "adoption"
