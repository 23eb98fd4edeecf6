"""Demo generators: same seed → same rows, and the tools compute believable figures from them."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from factories import add_client
from sqlmodel import select

from revops_core.testing import PgSchema, connect
from revops_cs.analytics.sla import DEFAULT_TARGETS_MINUTES
from revops_cs.demo.feedback import generate_feedback
from revops_cs.demo.support import generate_support
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.support import CsTicket, CsTicketComment

pytestmark = pytest.mark.anyio
AS_OF = date(2026, 3, 31)


def _portfolio(s: Any) -> list[Any]:
    start = AS_OF - timedelta(days=400)
    return [
        add_client(s, "Ent", tier="enterprise", stage="mature", contract_start=start),
        add_client(s, "Mid", tier="mid_market", stage="renewal", contract_start=start),
        add_client(s, "Small", tier="smb", stage="adoption", contract_start=start),
    ]


def _generate(server: Any, seed: int) -> tuple[dict[str, int], dict[str, int]]:
    with server.runtime.db.session(write=True) as s:
        clients = _portfolio(s)
        support = generate_support(s, random.Random(seed), clients, AS_OF)
        feedback = generate_feedback(s, random.Random(seed), clients, AS_OF)
    return support, feedback


def _fingerprint(server: Any) -> list[tuple[Any, ...]]:
    with server.runtime.db.session() as s:
        tickets = [
            (t.subject, t.priority, t.created_at, t.solved_at, t.csat) for t in s.exec(select(CsTicket))
        ]
        answers = [(f.kind, f.score, f.submitted_at, f.feature) for f in s.exec(select(CsFeedback))]
    return tickets + answers


def _stored_counts(server: Any) -> dict[str, int]:
    with server.runtime.db.session() as s:
        answers = s.exec(select(CsFeedback)).all()
        return {
            "tickets": len(s.exec(select(CsTicket)).all()),
            "comments": len(s.exec(select(CsTicketComment)).all()),
            "nps": sum(1 for f in answers if f.kind == "nps"),
            "feature_requests": sum(1 for f in answers if f.feature),
        }


def _first_response_compliance(server: Any) -> float:
    """REFERENCE: first response = earliest public agent comment (else the stored time), judged
    against the default targets at the end of AS_OF, over tickets created in the 90 days to AS_OF;
    met ÷ (met + breached), pending left out."""
    now = datetime.combine(AS_OF + timedelta(days=1), time(0), tzinfo=UTC)
    since = datetime.combine(AS_OF - timedelta(days=89), time(0), tzinfo=UTC)
    met = breached = 0
    with server.runtime.db.session() as s:
        comments = s.exec(select(CsTicketComment)).all()
        tickets = [t for t in s.exec(select(CsTicket)).all() if since <= t.created_at < now]
    replies: dict[int, datetime] = {}
    for c in comments:
        if c.is_agent and c.public and (c.ticket_id not in replies or c.created_at < replies[c.ticket_id]):
            replies[c.ticket_id] = c.created_at
    for t in tickets:
        target = timedelta(minutes=DEFAULT_TARGETS_MINUTES[t.priority][0])
        answered = replies.get(t.id or 0, t.first_response_at)
        answered = answered if answered is not None and answered <= now else None
        if answered is not None:
            met, breached = (met + 1, breached) if answered - t.created_at <= target else (met, breached + 1)
        elif now - t.created_at > target:
            breached += 1
    assert met > 0
    assert breached > 0
    return 100.0 * met / (met + breached)


async def test_demo_is_deterministic_and_feeds_the_tools(make_settings, tmp_path, backend):
    from revops_cs.server import create_server

    # Two independent stores: a second SQLite file, or a second PostgreSQL schema.
    other = PgSchema(backend.split("?")[0]) if backend else None
    first = create_server(make_settings(data_dir=tmp_path / "a"))
    second = create_server(make_settings(data_dir=tmp_path / "b", database_url=other.url if other else None))
    try:
        counts = _generate(first, 7)
        assert counts == _generate(second, 7)
        assert _fingerprint(first) == _fingerprint(second)
        support, feedback = counts
        stored = _stored_counts(first)
        assert (support["tickets"], support["comments"]) == (stored["tickets"], stored["comments"])
        assert (feedback["nps"], feedback["feature_requests"]) == (stored["nps"], stored["feature_requests"])
        expected_compliance = _first_response_compliance(first)
        async with connect(first) as client:
            perf = (
                await client.call_tool("analyze_support_performance", {"as_of": AS_OF.isoformat()})
            ).structured_content
            fb = (
                await client.call_tool("analyze_feedback_sentiment", {"as_of": AS_OF.isoformat()})
            ).structured_content
            kb = (await client.call_tool("search_knowledge_base", {"query": "export csv"})).structured_content
    finally:
        first.runtime.db.dispose()
        second.runtime.db.dispose()
        if other is not None:
            other.drop()
    assert perf["first_response_compliance"] == pytest.approx(expected_compliance)
    assert perf["first_response"]["median_min"] is not None
    assert fb["surveys"]["nps"]["responses"] == feedback["nps"]
    assert fb["themes"]
    assert kb["results"][0]["title"] == "Export data to CSV"
