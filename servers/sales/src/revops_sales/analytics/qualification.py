"""Qualification frameworks as scored checklists (REFERENCE.md): each element 0 unknown ·
1 partial · 2 validated. Score = 100·Σ values / (2·elements); "missing" lists the elements at 0
(never scored counts as 0: nothing is known about them), "partial" those at 1."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "BANT": ("budget", "authority", "need", "timeline"),
    "MEDDIC": (
        "metrics",
        "economic_buyer",
        "decision_criteria",
        "decision_process",
        "identify_pain",
        "champion",
    ),
    "MEDDPICC": (
        "metrics",
        "economic_buyer",
        "decision_criteria",
        "decision_process",
        "paper_process",
        "identify_pain",
        "champion",
        "competition",
    ),
    "CHAMP": ("challenges", "authority", "money", "prioritisation"),
}
DEFAULT_FRAMEWORK = "BANT"
MAX_VALUE = 2


@dataclass(frozen=True)
class Qualification:
    points: int
    max_points: int
    score_pct: float
    missing: list[str]
    partial: list[str]


def score(framework: str, values: Mapping[str, int]) -> Qualification:
    elements = FRAMEWORKS[framework]
    points = sum(values.get(e, 0) for e in elements)
    max_points = MAX_VALUE * len(elements)
    return Qualification(
        points=points,
        max_points=max_points,
        score_pct=round(100 * points / max_points, 2),
        missing=[e for e in elements if values.get(e, 0) == 0],
        partial=[e for e in elements if values.get(e, 0) == 1],
    )
