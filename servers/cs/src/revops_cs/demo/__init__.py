"""Deterministic demo data for the CS server (same seed → same rows).

`generate_cs_demo` builds the whole CS portfolio: clients and a year of usage first (every other
area hangs off those clients), then each area's generator, then weekly health snapshots computed
from those rows — so trends, reports and prompts have history on a fresh install.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from revops_cs.models.clients import CsClient


def _area_generators() -> list[Callable[..., Any]]:
    """Every area's generator, in dependency order: retention churns accounts before expansion
    writes their MRR history; communication writes last, about the final portfolio."""
    from revops_cs.demo.communication import generate_communication
    from revops_cs.demo.expansion import generate_expansion
    from revops_cs.demo.feedback import generate_feedback
    from revops_cs.demo.onboarding import generate_onboarding
    from revops_cs.demo.retention import generate_retention
    from revops_cs.demo.support import generate_support

    return [
        generate_onboarding,
        generate_support,
        generate_feedback,
        generate_retention,
        generate_expansion,
        generate_communication,
    ]


def generate_cs_demo(
    session: Session, *, seed: int, clients: int, as_of: date, health_weeks: int = 12
) -> list[CsClient]:
    """Insert a complete CS demo portfolio and `health_weeks` weekly health snapshots. No commit."""
    from revops_cs.demo.clients import generate_clients_and_usage
    from revops_cs.services.health import compute_health

    rng = random.Random(seed)
    portfolio = generate_clients_and_usage(session, rng, clients=clients, as_of=as_of)
    for generate in _area_generators():
        generate(session, rng, portfolio, as_of)
    session.flush()
    live = [c for c in portfolio if c.stage != "churned"]
    for week in range(health_weeks - 1, -1, -1):
        day = as_of - timedelta(days=7 * week)
        for client in live:
            compute_health(session, client, day)
    return portfolio
