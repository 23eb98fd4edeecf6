"""Revenue retention maths (REFERENCE: Revenue). Pure: MRR maps in, ratios out.

Only accounts active at the period start (MRR > 0) count; accounts that are new during the period
are excluded, so NRR measures the base you started with. A missing end value is churn (0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Retention:
    accounts: int
    start_mrr: int
    end_mrr: int
    expansion: int
    contraction: int
    churn: int
    churned_accounts: int
    nrr: float | None
    grr: float | None


def retention(start: Mapping[int, int], end: Mapping[int, int]) -> Retention:
    """NRR = Σ end / Σ start; GRR = Σ min(end, start) / Σ start, over accounts with start MRR > 0."""
    base = {k: v for k, v in start.items() if v > 0}
    s = sum(base.values())
    expansion = contraction = churn = kept = 0
    churned = 0
    for k, before in base.items():
        after = end.get(k, 0)
        kept += min(after, before)
        if after == 0:
            churn += before
            churned += 1
        elif after > before:
            expansion += after - before
        else:
            contraction += before - after
    e = s + expansion - contraction - churn
    return Retention(
        accounts=len(base),
        start_mrr=s,
        end_mrr=e,
        expansion=expansion,
        contraction=contraction,
        churn=churn,
        churned_accounts=churned,
        nrr=e / s if s else None,
        grr=kept / s if s else None,
    )


def annualise(rate: float, days: int) -> float:
    """Churn over `days` converted to a yearly rate: 1 − (1 − c)^(365/days).

    REFERENCE: only for periods that are not whole months; churn measured per month annualises with
    `annualise_monthly`, so a 28-day February and a 31-day March with the same churn agree."""
    if days <= 0:
        raise ValueError("days must be positive")
    # typeshed types float ** float as Any (a negative base gives a complex); a churn rate is in 0..1.
    kept: float = (1 - rate) ** (365 / days)
    return 1 - kept


def monthly_rate(rate: float, months: int) -> float:
    """Churn over `months` months as a compounded monthly rate: 1 − (1 − c)^(1/months)."""
    if months <= 0:
        raise ValueError("months must be positive")
    # As in `annualise`: the base is in 0..1, so the power is a float.
    kept: float = (1 - rate) ** (1 / months)
    return 1 - kept


def annualise_monthly(monthly: float) -> float:
    """A monthly churn rate compounded over a year: 1 − (1 − m)^12 (REFERENCE: Revenue)."""
    kept: float = (1 - monthly) ** 12  # as in `annualise`: the base is in 0..1
    return 1 - kept


def ltv(arpa: float, gross_margin: float, monthly_revenue_churn: float) -> float:
    """Lifetime value = ARPA × gross margin ÷ monthly revenue churn (churn must be > 0)."""
    if monthly_revenue_churn <= 0:
        raise ZeroDivisionError("monthly revenue churn is zero: LTV is unbounded")
    return arpa * gross_margin / monthly_revenue_churn


def renewal_forecast(items: list[tuple[int, float | None]]) -> tuple[int, float, int]:
    """(Σ ARR, Σ ARR × p over items with a probability, ARR with no probability)."""
    total = sum(a for a, _ in items)
    expected = sum(a * p for a, p in items if p is not None)
    unforecast = sum(a for a, p in items if p is None)
    return total, expected, unforecast
