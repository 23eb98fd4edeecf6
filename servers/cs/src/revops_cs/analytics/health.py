"""Health-score maths (REFERENCE.md "Customer Success"): sub-score recipes, weighted mean, bands, trend.

Pure functions, no I/O: the service gathers inputs from the database and calls these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date


def clamp(value: float, low: float = 0.0, high: float = 100.0) -> float:
    return max(low, min(high, value))


def attainment(actual: float, target: float, *, higher_is_better: bool = True) -> float:
    """Target attainment: `100·min(x/target, 1)` (or `100·min(target/x, 1)` when lower is better)."""
    if target <= 0:
        raise ValueError("target must be positive")
    if higher_is_better:
        return 100.0 * min(actual / target, 1.0)
    if actual <= 0:
        return 100.0
    return 100.0 * min(target / actual, 1.0)


def recency_score(days_since_last_login: float, *, per_day: float = 2.0) -> float:
    """`max(0, 100 − 2·days_since_last_login)`."""
    return clamp(100.0 - per_day * days_since_last_login)


def tickets_score(tickets_30d: int, *, per_ticket: float = 10.0) -> float:
    """`max(0, 100 − 10·tickets_30d)`."""
    return clamp(100.0 - per_ticket * tickets_30d)


def nps(scores: Sequence[int]) -> float:
    """NPS = 100·(promoters − detractors)/N on 0–10 answers (promoters 9–10, detractors 0–6)."""
    if not scores:
        raise ValueError("NPS needs at least one answer")
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return 100.0 * (promoters - detractors) / len(scores)


def nps_score(scores: Sequence[int]) -> float:
    """Sentiment sub-score from NPS answers: `(NPS + 100)/2`.

    With one answer this equals the single-answer rule (promoter 100, passive 50, detractor 0).
    """
    return (nps(scores) + 100.0) / 2.0


def contract_score(
    failed_payments: int,
    days_to_renewal: int | None,
    *,
    per_failure: float = 25.0,
    overdue_penalty: float = 50.0,
) -> float:
    """Contract/renewal: 100 − 25 per failed payment in the window − 50 when the renewal date has passed
    (the REFERENCE-style defaults; the health settings configure both numbers)."""
    score = 100.0 - per_failure * failed_payments
    if days_to_renewal is not None and days_to_renewal < 0:
        score -= overdue_penalty
    return clamp(score)


def weighted_mean(
    scores: Mapping[str, float | None], weights: Mapping[str, float]
) -> tuple[float, list[str]]:
    """`H = Σ wₖ·sₖ / Σ wₖ` over components with data (None = missing); returns (H, missing names).

    A missing component's weight is thereby spread over the others in proportion to their weights.
    """
    present = {k: v for k, v in scores.items() if v is not None and weights.get(k, 0) > 0}
    missing = sorted(k for k in weights if scores.get(k) is None)
    total = sum(weights[k] for k in present)
    if total <= 0:
        raise ValueError("no component with data and a positive weight")
    return sum(weights[k] * v for k, v in present.items()) / total, missing


def portfolio_average(scores: Sequence[float]) -> float | None:
    """Mean of the clients' latest scores to one decimal; None without any (report and overview)."""
    return mean_to_one_decimal(sum(scores), len(scores))


def mean_to_one_decimal(total: float, count: int) -> float | None:
    """`portfolio_average` from a sum and a count (a report that aggregates in SQL)."""
    return round(total / count, 1) if count else None


def effective_weights(present: Sequence[str], weights: Mapping[str, float]) -> dict[str, float]:
    """Each present component's share of the total weight, in percent (sums to 100)."""
    total = sum(weights[k] for k in present)
    return {k: 100.0 * weights[k] / total for k in present} if total > 0 else {}


@dataclass(frozen=True)
class Bands:
    """Lower bounds of the half-open bands: [excellent,100] · [good,excellent) · [at_risk,good) · rest."""

    excellent: float = 90.0
    good: float = 70.0
    at_risk: float = 50.0


BAND_NAMES: tuple[str, ...] = ("excellent", "good", "at_risk", "critical")


def band(score: float, bands: Bands = Bands()) -> str:
    if score >= bands.excellent:
        return "excellent"
    if score >= bands.good:
        return "good"
    if score >= bands.at_risk:
        return "at_risk"
    return "critical"


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Ordinary least-squares slope of ys on xs."""
    n = len(xs)
    if n != len(ys) or n < 2:
        raise ValueError("slope needs at least two (x, y) points")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all x values are equal")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def weekly_latest(points: Iterable[tuple[date, float]], first: date) -> list[tuple[float, float]]:
    """(weeks since `first`, score) of the last point of each 7-day bucket from `first`, oldest first.

    `points` come in stored order (date, then id), so a later snapshot of a week replaces an earlier one.
    """
    buckets: dict[int, tuple[float, float]] = {}
    for day, score in points:
        buckets[(day - first).days // 7] = ((day - first).days / 7, score)
    return [buckets[week] for week in sorted(buckets)]


def trend(slope_per_week: float, *, stable_within: float = 2.0) -> str:
    """improving / declining, or stable when |slope| ≤ `stable_within` points per week."""
    if abs(slope_per_week) <= stable_within:
        return "stable"
    return "improving" if slope_per_week > 0 else "declining"
