"""Onboarding maths: milestone status, funnel conversion, medians. Pure."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date


def milestone_status(due: date, completed: date | None, as_of: date, at_risk_days: int) -> str:
    """done · overdue (past due, not done) · at_risk (due within N days, not done) · on_track."""
    if completed is not None and completed <= as_of:
        return "done"
    if due < as_of:
        return "overdue"
    if (due - as_of).days <= at_risk_days:
        return "at_risk"
    return "on_track"


@dataclass(frozen=True)
class FunnelStep:
    seq: int
    name: str
    plans: int  # plans that have this step
    completed: int
    conversion_from_previous: float | None  # completed here ÷ completed at the previous step
    median_days_from_start: float | None


def funnel(plans: list[tuple[date, list[tuple[int, str, date | None]]]]) -> list[FunnelStep]:
    """Per milestone position: how many plans completed it, conversion from the step before, median days.

    `plans` is [(start_date, [(seq, name, completed_on)])]. A step counts as converted for a plan
    only if that plan also completed the previous step, so conversion never exceeds 100 %.
    """
    seqs = sorted({s for _, ms in plans for s, _, _ in ms})
    steps: list[FunnelStep] = []
    prev_done: set[int] = set()
    for i, seq in enumerate(seqs):
        names: dict[str, int] = {}
        done: set[int] = set()
        days: list[int] = []
        have = 0
        for idx, (start, ms) in enumerate(plans):
            for s, name, completed in ms:
                if s != seq:
                    continue
                have += 1
                names[name] = names.get(name, 0) + 1
                if completed is not None:
                    done.add(idx)
                    days.append((completed - start).days)
        converted = len(done & prev_done) if i else None
        steps.append(
            FunnelStep(
                seq=seq,
                name=max(names, key=lambda n: names[n]),
                plans=have,
                completed=len(done),
                conversion_from_previous=(
                    (converted / len(prev_done) if prev_done else None) if converted is not None else None
                ),
                median_days_from_start=float(statistics.median(days)) if days else None,
            )
        )
        prev_done = done
    return steps


def median_or_none(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None
