"""Renewal odds by health band from the tenant's own renewal outcomes (REFERENCE: Revenue).

An outcome is a lifecycle move out of stage `renewal`: to `churned` is a non-renewal, to any other
stage a renewal. Its band is the client's latest health snapshot as of the day it entered `renewal`
(the prediction point: what was known before the outcome, as the forecast uses today's band for a
renewal still to come). With no snapshot then, or one older than the configured limit, the outcome
has no band: it is counted as such and informs no band.

p(renew | band) = (renewed + k·m) / (n + k): the mean of a Beta(k·m, k·(1 − m)) prior (REFERENCE's
α = k·m, β = k·(1 − m)) updated by the band's n outcomes, where m is the configured prior mean — an
assumption, not a measurement — and k its strength in pseudo-outcomes. With n = 0 it is m itself.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

RENEWAL = "renewal"
CHURNED = "churned"
PRIOR_ONLY = "prior (assumption, no history)"
OBSERVED = "observed outcomes with prior"


@dataclass(frozen=True)
class Move:
    """One stage change: who, when, from, to."""

    client_id: int
    at: datetime
    from_stage: str | None
    to_stage: str


@dataclass(frozen=True)
class Outcome:
    client_id: int
    entered: date | None  # the day it entered `renewal` (None: no entry on record)
    renewed: bool
    band: str | None


@dataclass(frozen=True)
class BandOdds:
    band: str
    probability: float
    renewed: int
    observations: int
    prior_mean: float
    prior_strength: float
    source: str


def band_at(snapshots: Sequence[tuple[date, str]], day: date, max_age_days: int) -> str | None:
    """The band of the latest snapshot on or before `day` (sorted (as_of, band) pairs), if at most
    `max_age_days` old then."""
    i = bisect.bisect_right([d for d, _ in snapshots], day)
    if not i:
        return None
    as_of, band = snapshots[i - 1]
    return band if (day - as_of).days <= max_age_days else None


def outcomes(
    moves: Iterable[Move], snapshots: Mapping[int, Sequence[tuple[date, str]]], max_age_days: int
) -> list[Outcome]:
    """Each exit from `renewal`, paired with the client's preceding entry. `moves` in time order."""
    entered: dict[int, date] = {}
    out: list[Outcome] = []
    for m in moves:
        if m.from_stage == RENEWAL:
            day = entered.pop(m.client_id, None)
            band = band_at(snapshots.get(m.client_id, ()), day, max_age_days) if day else None
            out.append(Outcome(m.client_id, day, m.to_stage != CHURNED, band))
        if m.to_stage == RENEWAL:
            entered[m.client_id] = m.at.date()
    return out


def posterior_mean(renewed: int, n: int, prior_mean: float, strength: float) -> float:
    """(renewed + k·m) / (n + k); exactly m when n = 0."""
    if strength <= 0:
        raise ValueError("prior strength must be positive")
    if not 0 <= renewed <= n:
        raise ValueError("renewed must be within 0..n")
    if n == 0:
        return prior_mean
    return (renewed + strength * prior_mean) / (n + strength)


def by_band(found: Iterable[Outcome], priors: Mapping[str, float], strength: float) -> list[BandOdds]:
    """One estimate per band of `priors`, in its order; outcomes without a band are left out."""
    n: dict[str, int] = dict.fromkeys(priors, 0)
    won: dict[str, int] = dict.fromkeys(priors, 0)
    for o in found:
        if o.band in n:
            n[o.band] += 1
            won[o.band] += o.renewed
    return [
        BandOdds(
            band=band,
            probability=posterior_mean(won[band], n[band], m, strength),
            renewed=won[band],
            observations=n[band],
            prior_mean=m,
            prior_strength=strength,
            source=OBSERVED if n[band] else PRIOR_ONLY,
        )
        for band, m in priors.items()
    ]
