"""Stage-to-stage conversion (a funnel) from per-stage counts.

A deal that entered a stage *advanced* if it later reached an open stage further down the
pipeline or was won; conversion to the next stage is advanced ÷ entered, and the funnel's
cumulative conversion multiplies those rates stage by stage. Deals still in the stage have not
decided yet: they stay in the denominator, so a young cohort reads low, and the share still open
is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StageCounts:
    stage_id: int
    entered: int
    advanced: int
    won: int
    lost: int
    still_there: int


def rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def cumulative(stages: Sequence[StageCounts]) -> list[float | None]:
    """Product of the stage rates up to and including each stage. A stage no deal entered (deals
    skip stages) has no rate: it is null and left out of the product, not counted as 0 or 1."""
    out: list[float | None] = []
    running = 1.0
    for stage in stages:
        step = rate(stage.advanced, stage.entered)
        if step is None:
            out.append(None)
            continue
        running *= step
        out.append(running)
    return out
