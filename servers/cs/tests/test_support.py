"""Support toolset through the protocol: tickets, escalations, routing, knowledge base, performance."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import add_client, at
from sqlalchemy import func
from sqlmodel import select

from revops_core.audit import AuditEntry
from revops_core.testing import connect, error_of
from revops_cs.models.retention import CsEscalation
from revops_cs.models.support import CsKbArticle, CsSupportAgent, CsTicket, CsTicketComment

pytestmark = pytest.mark.anyio


def count(server: Any, model: Any) -> int:
    with server.runtime.db.session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def seed(server: Any, fn: Any) -> Any:
    with server.runtime.db.session(write=True) as s:
        return fn(s)


async def call(client: Any, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


async def test_ticket_lifecycle_is_stored_and_reports_not_mirrored(cs_server):
    client_id = seed(cs_server, lambda s: add_client(s, "Acme").id)
    async with connect(cs_server) as client:
        created = await call(
            client,
            "handle_support_ticket",
            action="create",
            client_id=client_id,
            subject="Export fails",
            body="CSV export times out",
            priority="high",
            tags=["export"],
        )
        assert created["mirrored"] is False
        assert "revops vault set zendesk subdomain=" in created["mirror_note"]
        ticket_id = created["ticket"]["id"]
        assert created["ticket"]["status"] == "new"
        reply = await call(
            client, "handle_support_ticket", action="comment", ticket_id=ticket_id, body="Looking into it"
        )
        assert reply["ticket"]["status"] == "open"
        assert reply["ticket"]["first_response_at"] is not None
        solved = await call(client, "handle_support_ticket", action="resolve", ticket_id=ticket_id, csat=5)
        assert solved["ticket"]["status"] == "solved"
        assert solved["ticket"]["csat"] == 5
        got = await call(client, "handle_support_ticket", action="get", ticket_id=ticket_id)
    assert [c["body"] for c in got["comments"]] == ["Looking into it"]
    with cs_server.runtime.db.session() as s:
        ticket = s.get(CsTicket, ticket_id)
        assert ticket is not None
        assert ticket.solved_at is not None
        assert ticket.external_id is None
        actions = [e.action for e in s.exec(select(AuditEntry).where(AuditEntry.action.like("cs.%")))]
    assert actions.count("cs.handle_support_ticket") == 3  # create, comment, resolve; get is a read


async def test_escalate_creates_escalation_due_at_severity_resolution_target(cs_server):
    def rows(s):
        c = add_client(s, "Acme")
        t = CsTicket(client_id=c.id, subject="Down", priority="normal")
        s.add(t)
        s.flush()
        return t.id

    ticket_id = seed(cs_server, rows)
    async with connect(cs_server) as client:
        before = datetime.now(UTC)
        out = await call(
            client, "handle_support_ticket", action="escalate", ticket_id=ticket_id, priority="urgent"
        )
        again = await client.call_tool(
            "handle_support_ticket", {"action": "escalate", "ticket_id": ticket_id}
        )
    assert error_of(again)["code"] == "validation_error"
    with cs_server.runtime.db.session() as s:
        esc = s.get(CsEscalation, out["escalation_id"])
        assert esc is not None
        assert esc.severity == "urgent"
        assert esc.ticket_id == ticket_id
        assert timedelta(hours=2) <= esc.due_at - before <= timedelta(hours=2, minutes=1)
    assert out["ticket"]["escalated"] is True
    assert "escalated" in out["ticket"]["tags"]
    assert count(cs_server, CsEscalation) == 1


async def test_ticket_errors_name_the_field_and_change_nothing(cs_server):
    client_id = seed(cs_server, lambda s: add_client(s, "Acme").id)
    async with connect(cs_server) as client:
        cases = [
            ({"action": "create", "client_id": 999, "subject": "x", "body": "y"}, "not_found", "client_id"),
            ({"action": "create", "client_id": client_id, "subject": "x"}, "validation_error", "body"),
            ({"action": "comment", "ticket_id": 4242, "body": "hi"}, "not_found", "ticket_id"),
            ({"action": "update", "ticket_id": 4242}, "not_found", "ticket_id"),
            ({"action": "get"}, "validation_error", "ticket_id"),
            ({"action": "get", "ticket_id": 2**40}, "validation_error", "ticket_id"),  # once crashed SQLite
        ]
        for args, code, field in cases:
            err = error_of(await client.call_tool("handle_support_ticket", args))
            assert (err["code"], err.get("field")) == (code, field), args
        bad = await client.call_tool("handle_support_ticket", {"action": "create", "client_id": 1, "csat": 9})
        assert error_of(bad)["code"] == "validation_error"
    assert count(cs_server, CsTicket) == 0
    assert count(cs_server, CsTicketComment) == 0


async def test_routing_picks_first_matching_rule_and_least_loaded_agent(cs_server):
    def rows(s):
        ent = add_client(s, "Big", tier="enterprise")
        small = add_client(s, "Small", tier="smb")
        s.add(CsSupportAgent(name="ann", team="tier1"))
        s.add(CsSupportAgent(name="bob", team="tier1"))
        s.add(CsSupportAgent(name="cat", team="vip"))
        for i in range(2):  # ann carries two open tickets, bob one, and bob's solved one does not count
            s.add(CsTicket(client_id=small.id, subject=f"a{i}", assignee="ann", status="open"))
        s.add(CsTicket(client_id=small.id, subject="b", assignee="bob", status="open"))
        s.add(CsTicket(client_id=small.id, subject="b2", assignee="bob", status="solved"))
        t1 = CsTicket(client_id=small.id, subject="new one", priority="normal")
        t2 = CsTicket(client_id=ent.id, subject="vip one", priority="normal")
        s.add(t1)
        s.add(t2)
        s.flush()
        return t1.id, t2.id

    small_ticket, ent_ticket = seed(cs_server, rows)
    async with connect(cs_server) as client:
        missing = await client.call_tool("route_ticket", {"action": "route", "ticket_id": small_ticket})
        assert error_of(missing)["field"] == "rules"
        await call(
            client,
            "route_ticket",
            action="add_rule",
            name="vip",
            team="vip",
            match_tier="enterprise",
            position=1,
        )
        await call(client, "route_ticket", action="add_rule", name="rest", team="tier1", position=50)
        routed = await call(client, "route_ticket", action="route", ticket_id=small_ticket)
        vip = await call(client, "route_ticket", action="route", ticket_id=ent_ticket)
        listed = await call(client, "route_ticket", action="list")
    assert routed["rule"]["name"] == "rest"
    assert routed["assignee"] == "bob"
    assert routed["team"] == "tier1"
    assert [(a["agent"], a["open_tickets"]) for a in routed["agents"]] == [("bob", 1), ("ann", 2)]
    assert vip["assignee"] == "cat"
    assert vip["rule"]["match"] == {"tier": "enterprise"}
    loads = {a["agent"]: a["open_tickets"] for a in listed["agents"]}
    assert loads == {"ann": 2, "bob": 2, "cat": 1}
    assert [r["name"] for r in listed["rules"]] == ["vip", "rest"]


async def test_knowledge_base_full_text_search_is_ranked_with_snippets(cs_server):
    async with connect(cs_server) as client:
        a = await call(
            client,
            "manage_knowledge_base",
            action="create",
            title="Reset your password",
            body="To reset a password open Settings, choose Security and click Reset password.",
            tags=["account"],
        )
        await call(
            client,
            "manage_knowledge_base",
            action="create",
            title="Exporting invoices",
            body="Invoices can be exported as CSV. Password protected PDFs are not supported.",
        )
        await call(
            client,
            "manage_knowledge_base",
            action="create",
            title="Draft",
            body="password notes",
            status="draft",
        )
        hits = await call(client, "manage_knowledge_base", action="search", query="resetting passwords")
        assert [h["title"] for h in hits["results"]] == ["Reset your password", "Exporting invoices"]
        assert hits["results"][0]["rank"] > hits["results"][1]["rank"]
        assert "[" in hits["results"][0]["snippet"]
        with_drafts = await call(
            client, "manage_knowledge_base", action="search", query="password", include_drafts=True
        )
        assert len(with_drafts["results"]) == 3
        await call(
            client,
            "manage_knowledge_base",
            action="update",
            article_id=a["article"]["id"],
            body="Use the single sign-on portal to recover access.",
        )
        after = await call(client, "manage_knowledge_base", action="search", query="portal")
        gone = await call(client, "manage_knowledge_base", action="search", query="security")
        empty = await client.call_tool("manage_knowledge_base", {"action": "search", "query": "!!"})
        missing = await client.call_tool("manage_knowledge_base", {"action": "get", "article_id": 99})
    assert [h["id"] for h in after["results"]] == [a["article"]["id"]]  # the index follows updates
    assert gone["results"] == []
    assert error_of(empty)["field"] == "query"
    assert error_of(missing)["code"] == "not_found"
    assert count(cs_server, CsKbArticle) == 3


def _ticket(s, client_id, priority, created, first_reply=None, solved=None, **extra):
    t = CsTicket(
        client_id=client_id,
        subject=f"{priority} {created}",
        priority=priority,
        created_at=created,
        status="solved" if solved else "open",
        solved_at=solved,
        **extra,
    )
    s.add(t)
    s.flush()
    if first_reply is not None:
        s.add(
            CsTicketComment(
                ticket_id=t.id,
                author="customer",
                is_agent=False,
                body="more info",
                created_at=created + timedelta(minutes=1),
            )
        )
        s.add(
            CsTicketComment(
                ticket_id=t.id,
                author="agent",
                is_agent=True,
                public=False,
                body="internal",
                created_at=created + timedelta(minutes=2),
            )
        )
        s.add(
            CsTicketComment(
                ticket_id=t.id, author="agent", is_agent=True, body="reply", created_at=first_reply
            )
        )
    return t


async def test_support_performance_exact_sla_compliance(cs_server):
    t0 = at("2026-03-02", 9)

    def rows(s):
        c = add_client(s, "Acme")
        m = timedelta(minutes=1)
        _ticket(s, c.id, "urgent", t0, t0 + 5 * m, t0 + 60 * m, csat=5)  # met / met
        _ticket(s, c.id, "urgent", t0, t0 + 30 * m, t0 + 200 * m, csat=2)  # breached / breached
        _ticket(s, c.id, "high", t0, t0 + 20 * m, None)  # met / open past 8 h at as_of: breached
        _ticket(s, c.id, "low", t0, None, None, csat=4)  # no reply, past 8 h: breached / past 72 h: breached
        _ticket(s, c.id, "normal", t0 - timedelta(days=400), t0, t0)  # outside the period
        return c.id

    client_id = seed(cs_server, rows)
    async with connect(cs_server) as client:
        perf = await call(
            client,
            "analyze_support_performance",
            start_date="2026-03-01",
            end_date="2026-03-31",
            as_of="2026-04-01",
        )
        one = await call(client, "analyze_support_performance", client_id=client_id, as_of="2026-03-02")
        bad = await client.call_tool(
            "analyze_support_performance",
            {"start_date": "2026-03-10", "end_date": "2026-03-01", "as_of": "2026-04-01"},
        )
        unknown = await client.call_tool("analyze_support_performance", {"client_id": 77})
    assert perf["tickets"] == 4
    rows_by_p = {r["priority"]: r for r in perf["sla"]}
    assert rows_by_p["urgent"]["first_response"] == [1, 1, 0]
    assert rows_by_p["urgent"]["resolution"] == [1, 1, 0]
    assert rows_by_p["high"]["first_response"] == [1, 0, 0]
    assert rows_by_p["high"]["resolution"] == [0, 1, 0]
    assert rows_by_p["low"]["first_response"] == [0, 1, 0]
    assert perf["first_response_compliance"] == pytest.approx(50.0)  # 2 met of 4
    assert perf["resolution_compliance"] == pytest.approx(25.0)  # 1 met of 4
    assert perf["first_response"]["median_min"] == pytest.approx(20.0)  # 5, 20, 30 (private note ignored)
    assert perf["resolution"]["median_min"] == pytest.approx(130.0)  # 60, 200
    assert perf["csat_responses"] == 3
    assert perf["csat"] == pytest.approx(200 / 3)
    assert perf["backlog"] == {"high": {">30d": 1}, "low": {">30d": 1}}  # 30.6 days old at as_of
    # Judged at the end of the creation day: the low ticket (8 h reply target) breached, 72 h still pending.
    low = {r["priority"]: r for r in one["sla"]}["low"]
    assert low["first_response"] == [0, 1, 0]
    assert low["resolution"] == [0, 0, 1]
    assert error_of(bad)["field"] == "end_date"
    assert error_of(unknown)["code"] == "not_found"


async def test_support_performance_without_tickets_reports_nulls(cs_server):
    async with connect(cs_server) as client:
        perf = await call(client, "analyze_support_performance", as_of=date(2026, 1, 1).isoformat())
    assert perf["tickets"] == 0
    assert perf["first_response_compliance"] is None
    assert perf["csat"] is None
    assert perf["first_response"]["median_min"] is None
    assert perf["backlog"] == {}


def test_ticket_tags_are_json(tmp_path):
    assert json.loads(CsTicket(client_id=1, subject="x").tags) == []


async def test_sla_targets_come_from_the_config_table(cs_server):
    from revops_cs.models.support import CsSlaTarget

    t0 = at("2026-03-02", 9)

    def rows(s):
        c = add_client(s, "Acme")
        _ticket(s, c.id, "urgent", t0, t0 + timedelta(minutes=30), t0 + timedelta(hours=5))
        return c.id

    seed(cs_server, rows)
    args = {"start_date": "2026-03-01", "end_date": "2026-03-31", "as_of": "2026-04-01"}
    async with connect(cs_server) as client:
        default = await call(client, "analyze_support_performance", **args)
        seed(
            cs_server,
            lambda s: s.add(
                CsSlaTarget(priority="urgent", first_response_minutes=60, resolution_minutes=360)
            ),
        )
        relaxed = await call(client, "analyze_support_performance", **args)
    assert default["sla"][0]["first_response"] == [0, 1, 0]  # REFERENCE: urgent 10 min / 2 h
    assert default["sla"][0]["resolution"] == [0, 1, 0]
    assert relaxed["sla"][0]["target_first_response_min"] == 60
    assert relaxed["sla"][0]["first_response"] == [1, 0, 0]
    assert relaxed["sla"][0]["resolution"] == [1, 0, 0]
