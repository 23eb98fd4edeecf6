"""Deterministic demo data for the CS server (same seed → same rows).

`generate_cs_demo` builds the whole CS portfolio: clients and a year of usage first (every other
area hangs off those clients), then each area's generator, then weekly health snapshots computed
from those rows — so trends, reports and prompts have history on a fresh install.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from revops_cs.models.clients import CsClient

# Area generators with the signature (session, rng, clients, as_of); run in this order.
AREA_GENERATORS: tuple[tuple[str, str], ...] = (
    ("revops_cs.demo.onboarding", "generate_onboarding"),
    ("revops_cs.demo.support", "generate_support"),
    ("revops_cs.demo.feedback", "generate_feedback"),
    ("revops_cs.demo.retention", "generate_retention"),
    ("revops_cs.demo.expansion", "generate_expansion"),
)


def _area_generators() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for module_name, attr in AREA_GENERATORS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue  # an area not installed in this build contributes no rows
        fn = getattr(module, attr, None)
        if fn is not None:
            found.append((module_name.rsplit(".", 1)[-1], fn))
    return found


def generate_cs_demo(
    session: Session, *, seed: int, clients: int, as_of: date, health_weeks: int = 12
) -> list[CsClient]:
    """Insert a complete CS demo portfolio and `health_weeks` weekly health snapshots. No commit."""
    from revops_cs.demo.clients import generate_clients_and_usage
    from revops_cs.health_service import compute_health

    rng = random.Random(seed)
    portfolio = generate_clients_and_usage(session, rng, clients=clients, as_of=as_of)
    for _, generate in _area_generators():
        generate(session, rng, portfolio, as_of)
    session.flush()
    live = [c for c in portfolio if c.stage != "churned"]
    for week in range(health_weeks - 1, -1, -1):
        day = as_of - timedelta(days=7 * week)
        for client in live:
            compute_health(session, client, day)
    return portfolio
