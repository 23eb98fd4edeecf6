"""Renewal odds from the tenant's own renewal outcomes (issue 7, finding 4) and the age of the health
snapshot behind renewal and upsell figures (finding 7), all recorded and read through the protocol.

Health comes from one login only (no seats, tickets, NPS, catalogue or billing), so its score is the
engagement sub-score 100 − 2·days since that login, and the band follows from the login's date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from revops_core.testing import call_error, call_ok, connect
from revops_cs.analytics import renewal_odds

pytestmark = pytest.mark.anyio
LOGIN_DAYS = {"excellent": 2, "good": 10, "at_risk": 20, "critical": 30}  # 96 · 80 · 60 · 40
PRIOR = {"excellent": 0.95, "good": 0.85, "at_risk": 0.6, "critical": 0.3}  # the documented defaults
K = 10.0  # default prior strength
PRIOR_ONLY, OBSERVED = "prior (assumption, no history)", "observed outcomes with prior"


def _today() -> date:
    return datetime.now(UTC).date()


async def _register(client: Any, name: str, arr: int = 0, renewal: date | None = None) -> int:
    args: dict[str, Any] = {"name": name, "tier": "smb", "arr_minor": arr}
    if renewal is not None:
        args["renewal_date"] = renewal.isoformat()
    return int((await call_ok(client, "register_client", **args))["client_id"])


async def _score(client: Any, cid: int, day: date, band: str) -> float:
    """Record a login LOGIN_DAYS[band] days before `day` and store the health snapshot as of `day`."""
    login = day - timedelta(days=LOGIN_DAYS[band])
    events = [{"client_id": cid, "user_ref": "u1", "event": "login", "occurred_at": f"{login}T12:00:00Z"}]
    await call_ok(client, "record_usage_events", events=events)
    got = (await call_ok(client, "calculate_health_score", client_id=cid, as_of=day.isoformat()))["client"]
    assert (got["score"], got["band"]) == (100.0 - 2 * LOGIN_DAYS[band], band)
    return float(got["score"])


async def _move(client: Any, cid: int, *stages: str) -> None:
    for stage in stages:
        why = {"reason": "budget cut"} if stage == "churned" else {}
        await call_ok(client, "move_lifecycle_stage", client_id=cid, to_stage=stage, **why)


async def _renewal_history(client: Any) -> dict[str, int]:
    """Outcomes: good 3 renewed + 1 churned; excellent 1 renewed; one renewal with no snapshot at
    entry and one churn whose snapshot was 40 days old at entry (both without a band by default).
    Due for renewal: R1 good (in `renewal`, no outcome yet), R2 at_risk, R3 stale, R4 unscored."""
    today = _today()
    fresh, stale = today - timedelta(days=1), today - timedelta(days=40)
    for i, renews in enumerate((True, True, True, False)):
        cid = await _register(client, f"Good{i}")
        await _score(client, cid, fresh, "good")
        await _move(client, cid, "adoption", "renewal", "mature" if renews else "churned")
    cid = await _register(client, "Excellent")
    await _score(client, cid, fresh, "excellent")
    await _move(client, cid, "adoption", "renewal", "mature")
    cid = await _register(client, "Unscored")
    await _move(client, cid, "adoption", "renewal", "mature")
    cid = await _register(client, "StaleAtEntry")
    await _score(client, cid, stale, "good")
    await _move(client, cid, "adoption", "renewal", "churned")
    ids = {
        "R1": await _register(client, "R1", 100_000_00, today + timedelta(days=30)),
        "R2": await _register(client, "R2", 50_000_00, today + timedelta(days=60)),
        "R3": await _register(client, "R3", 20_000_00, today + timedelta(days=10)),
        "R4": await _register(client, "R4", 10_000_00, today + timedelta(days=5)),
    }
    await _score(client, ids["R1"], fresh, "good")
    await _move(client, ids["R1"], "adoption", "renewal")
    await _score(client, ids["R2"], fresh, "at_risk")
    await _score(client, ids["R3"], stale, "good")
    return ids


def _by_band(out: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        o["band"]: (o["probability"], o["renewed"], o["observations"], o["prior_mean"], o["source"])
        for o in out["odds"]
    }


async def test_renewal_probability_is_estimated_from_outcomes_by_band_with_the_prior(cs_server):
    async with connect(cs_server) as client:
        ids = await _renewal_history(client)
        out = await call_ok(client, "track_renewals", within_days=90)
        before = await call_ok(
            client, "track_renewals", within_days=90, as_of=(_today() - timedelta(days=1)).isoformat()
        )
    p_good = (3 + K * PRIOR["good"]) / (4 + K)
    p_excellent = (1 + K * PRIOR["excellent"]) / (1 + K)
    assert _by_band(out) == {
        "excellent": (p_excellent, 1, 1, 0.95, OBSERVED),
        "good": (p_good, 3, 4, 0.85, OBSERVED),
        "at_risk": (0.6, 0, 0, 0.6, PRIOR_ONLY),
        "critical": (0.3, 0, 0, 0.3, PRIOR_ONLY),
    }
    assert {o["prior_strength"] for o in out["odds"]} == {K}
    assert out["unbanded_outcomes"] == 2  # no snapshot at entry; a 40-day-old one at entry
    rows = out["renewals"]
    assert [r["client_id"] for r in rows] == [ids["R4"], ids["R3"], ids["R1"], ids["R2"]]
    assert [r["health_band"] for r in rows] == [None, "good", "good", "at_risk"]
    assert [r["health_age_days"] for r in rows] == [None, 40, 1, 1]
    assert [r["probability"] for r in rows] == [None, None, p_good, 0.6]
    assert rows[0]["note"] == "No health snapshot (calculate_health_score)."
    assert rows[1]["note"] == "Health snapshot 40 days old (> 30); recompute with calculate_health_score."
    assert [r["note"] for r in rows[2:]] == [None, None]
    (fc,) = out["forecast"]
    assert fc["renewing_arr_minor"] == 100_000_00 + 50_000_00 + 20_000_00 + 10_000_00
    assert fc["expected_arr_minor"] == round(100_000_00 * p_good + 50_000_00 * 0.6)
    assert fc["unforecast_arr_minor"] == 20_000_00 + 10_000_00
    # As of yesterday none of today's outcomes had happened: every band shows its prior.
    assert _by_band(before) == {b: (p, 0, 0, p, PRIOR_ONLY) for b, p in PRIOR.items()}
    assert before["unbanded_outcomes"] == 0


async def test_configured_prior_strength_means_and_snapshot_age_apply(cs_server):
    async with connect(cs_server) as client:
        ids = await _renewal_history(client)
        cfg = await call_ok(
            client,
            "configure_cs_thresholds",
            section="renewal",
            values={"prior_strength": 2, "probability_by_band": {"good": 0.5}, "max_snapshot_age_days": 40},
        )
        out = await call_ok(client, "track_renewals", within_days=90)
        bad_band = await call_error(
            client,
            "configure_cs_thresholds",
            section="renewal",
            values={"probability_by_band": {"gold": 0.5}},
        )
        bad_p = await call_error(
            client,
            "configure_cs_thresholds",
            section="renewal",
            values={"probability_by_band": {"good": 1.5}},
        )
        bad_k = await call_error(
            client, "configure_cs_thresholds", section="renewal", values={"prior_strength": 0}
        )
    # An override of one band keeps the other defaults.
    assert cfg["values"]["probability_by_band"] == {**PRIOR, "good": 0.5}
    k = 2.0
    # With 40 days allowed, the churn whose snapshot was 40 days old at entry now counts as good.
    p_good = (3 + k * 0.5) / (5 + k)
    odds = _by_band(out)
    assert odds["good"] == (p_good, 3, 5, 0.5, OBSERVED)
    assert odds["excellent"] == ((1 + k * 0.95) / (1 + k), 1, 1, 0.95, OBSERVED)
    assert odds["at_risk"] == (0.6, 0, 0, 0.6, PRIOR_ONLY)
    assert out["unbanded_outcomes"] == 1
    rows = {r["client_id"]: r for r in out["renewals"]}
    assert (rows[ids["R3"]]["probability"], rows[ids["R3"]]["note"]) == (p_good, None)
    (fc,) = out["forecast"]
    assert fc["expected_arr_minor"] == round(20_000_00 * p_good + 100_000_00 * p_good + 50_000_00 * 0.6)
    assert fc["unforecast_arr_minor"] == 10_000_00
    for err in (bad_band, bad_p, bad_k):
        assert err["code"] == "validation_error"
    assert "unknown band(s) gold" in bad_band["message"]


async def test_healthy_promoter_states_the_snapshot_age_and_skips_a_stale_one(cs_server):
    today = _today()
    scored_on = today - timedelta(days=40)
    async with connect(cs_server) as client:
        cid = await _register(client, "Promoter")
        score = await _score(client, cid, scored_on, "excellent")
        answered = f"{today - timedelta(days=1)}T12:00:00Z"
        await call_ok(client, "collect_feedback", client_id=cid, kind="nps", score=10, submitted_at=answered)
        stale = (await call_ok(client, "identify_upsell_opportunities", client_id=cid))["opportunities"][0]
        await call_ok(
            client, "configure_cs_thresholds", section="expansion", values={"max_snapshot_age_days": 40}
        )
        fresh = (await call_ok(client, "identify_upsell_opportunities", client_id=cid))["opportunities"][0]
    assert "healthy_promoter" not in {s["signal"] for s in stale["signals"]}
    assert (
        "healthy_promoter: health snapshot 40 days old (> 30); recompute with calculate_health_score"
        in stale["not_evaluated"]
    )
    evidence = {s["signal"]: s["evidence"] for s in fresh["signals"]}
    assert evidence["healthy_promoter"] == (
        f"Health {score:.1f} on {scored_on.isoformat()} (40 days old) and NPS 10 on "
        f"{(today - timedelta(days=1)).isoformat()}."
    )


def test_outcomes_pair_each_exit_with_its_entry_and_band_at_entry():
    at = datetime(2026, 5, 1, 9, tzinfo=UTC)
    moves = [
        renewal_odds.Move(1, at, "mature", "renewal"),
        renewal_odds.Move(1, at + timedelta(days=20), "renewal", "mature"),
        renewal_odds.Move(1, at + timedelta(days=200), "mature", "renewal"),
        renewal_odds.Move(1, at + timedelta(days=230), "renewal", "churned"),
        renewal_odds.Move(2, at, "renewal", "mature"),  # exit with no entry on record
    ]
    snaps = {1: [(date(2026, 4, 20), "good"), (date(2026, 11, 1), "critical")]}
    found = renewal_odds.outcomes(moves, snaps, max_age_days=30)
    assert [(o.client_id, o.entered, o.renewed, o.band) for o in found] == [
        (1, date(2026, 5, 1), True, "good"),  # snapshot 11 days old at entry
        (1, date(2026, 11, 17), False, "critical"),  # the later snapshot, not the first
        (2, None, True, None),
    ]
    assert renewal_odds.band_at(snaps[1], date(2026, 5, 21), 30) is None  # 31 days old
    assert renewal_odds.posterior_mean(0, 0, 0.3, 10) == 0.3
    with pytest.raises(ValueError):
        renewal_odds.posterior_mean(2, 1, 0.5, 10)
