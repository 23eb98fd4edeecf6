"""SLA maths: met / breached / pending with known timestamps, percentiles and age buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from revops_cs.analytics import sla

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARGETS = {
    p: sla.Target(timedelta(minutes=fr), timedelta(minutes=res))
    for p, (fr, res) in sla.DEFAULT_TARGETS_MINUTES.items()
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_reference_default_targets():
    assert sla.DEFAULT_TARGETS_MINUTES == {
        "urgent": (10, 120),
        "high": (30, 480),
        "normal": (240, 1440),
        "low": (480, 4320),
    }


def test_compliance_counts_met_breached_and_open_past_target():
    tickets = [
        sla.TicketTimes("urgent", T0, at(10), at(120)),  # exactly on target: met, met
        sla.TicketTimes("urgent", T0, at(11), at(121)),  # one minute late: breached, breached
        sla.TicketTimes("urgent", T0, None, None),  # open, judged 3 h later: breached, breached
        sla.TicketTimes("normal", T0, at(60), None),  # unsolved, inside 24 h: met, pending
    ]
    result = sla.compliance_by_priority(tickets, TARGETS, now=at(180))
    urgent, normal = result["urgent"], result["normal"]
    assert (urgent.first_response.met, urgent.first_response.breached) == (1, 2)
    assert (urgent.resolution.met, urgent.resolution.breached) == (1, 2)
    assert urgent.first_response.rate == pytest.approx(100 / 3)
    assert (normal.resolution.met, normal.resolution.breached, normal.resolution.pending) == (0, 0, 1)
    assert normal.resolution.rate is None


def test_a_reply_after_now_is_not_known_yet():
    ticket = sla.TicketTimes("high", T0, at(20), None)
    result = sla.compliance_by_priority([ticket], TARGETS, now=at(5))
    assert result["high"].first_response.pending == 1


def test_distribution_and_buckets():
    d = sla.distribution([10, 20, 30, 40, 50])
    assert (d.count, d.median, d.mean) == (5, 30.0, 30.0)
    assert d.p90 == pytest.approx(46.0)
    assert sla.distribution([]).median is None
    assert sla.age_bucket(timedelta(hours=5)) == "<1d"
    assert sla.age_bucket(timedelta(days=2)) == "1-3d"
    assert sla.age_bucket(timedelta(days=45)) == ">30d"


def test_combined_adds_the_counts_of_every_priority():
    urgent = sla.PriorityCompliance(sla.Compliance(1, 1, 0), sla.Compliance(0, 2, 0))
    low = sla.PriorityCompliance(sla.Compliance(2, 0, 1), sla.Compliance(1, 0, 2))
    total = sla.combined([urgent, low])
    assert (total.first_response.met, total.first_response.breached, total.first_response.pending) == (
        3,
        1,
        1,
    )
    assert (total.resolution.met, total.resolution.breached, total.resolution.pending) == (1, 2, 2)
    assert total.first_response.rate == pytest.approx(75.0)
    assert sla.combined([]).resolution.rate is None
