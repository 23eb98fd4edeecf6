"""Support toolset through the protocol: tickets, escalations, routing, knowledge base, performance."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from factories import add_client, at
from sqlmodel import select

from revops_core.audit import AuditEntry
from revops_core.testing import call_error, call_ok, connect, count_rows, error_of
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.support import CsKbArticle, CsSupportAgent, CsTicket, CsTicketComment

pytestmark = pytest.mark.anyio
TOO_BIG = 2**31  # one past PostgreSQL INTEGER: a validation_error on every backend


def seed(server: Any, fn: Any) -> Any:
    with server.runtime.db.session(write=True) as s:
        return fn(s)


async def call(client: Any, tool: str, **args: Any) -> dict[str, Any]:
    return await call_ok(client, tool, **args)


async def test_ticket_lifecycle_is_stored_and_reports_not_mirrored(cs_server):
    client_id = seed(cs_server, lambda s: add_client(s, "Acme").id)
    async with connect(cs_server) as client:
        created = await call(
            client,
            "create_ticket",
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
            client, "update_ticket", action="comment", ticket_id=ticket_id, body="Looking into it"
        )
        assert reply["ticket"]["status"] == "open"
        assert reply["ticket"]["first_response_at"] is not None
        solved = await call(client, "update_ticket", action="resolve", ticket_id=ticket_id, csat=5)
        assert solved["ticket"]["status"] == "solved"
        assert solved["ticket"]["csat"] == 5
        got = await call(client, "get_ticket", ticket_id=ticket_id)
    assert [c["body"] for c in got["comments"]] == ["Looking into it"]
    assert got["ticket"]["status"] == "solved"
    with cs_server.runtime.db.session() as s:
        ticket = s.get(CsTicket, ticket_id)
        assert ticket is not None
        assert ticket.solved_at is not None
        assert ticket.external_id is None
        actions = [e.action for e in s.exec(select(AuditEntry).where(AuditEntry.action.like("cs.%")))]
    # create, comment, resolve are audited writes; get_ticket is a read
    assert (actions.count("cs.create_ticket"), actions.count("cs.update_ticket")) == (1, 2)
    assert "cs.get_ticket" not in actions


async def test_list_tickets_pages_newest_first_and_filters(cs_server):
    t0 = at("2026-03-02", 9)

    def rows(s):
        a, b = add_client(s, "A"), add_client(s, "B")
        made = []
        for i, (client, status) in enumerate([(a, "open"), (b, "solved"), (a, "new"), (a, "closed")]):
            t = CsTicket(
                client_id=client.id, subject=f"t{i}", status=status, created_at=t0 + timedelta(hours=i)
            )
            s.add(t)
            s.flush()
            made.append(t.id)
        return a.id, made

    a_id, ids = seed(cs_server, rows)
    async with connect(cs_server) as client:
        page1 = await call(client, "list_tickets", limit=3)
        page2 = await call(client, "list_tickets", limit=3, cursor=page1["next_cursor"])
        mine = await call(client, "list_tickets", client_id=a_id, open_only=True)
        solved = await call(client, "list_tickets", status="solved")
        unknown = await call_error(client, "list_tickets", client_id=a_id + 100)
        bad_cursor = await call_error(client, "list_tickets", cursor="not-a-cursor")
    assert [t["id"] for t in page1["items"] + page2["items"]] == list(reversed(ids))
    assert (page1["total"], page2["next_cursor"]) == (4, None)
    assert [t["id"] for t in mine["items"]] == [ids[2], ids[0]]
    assert [t["status"] for t in solved["items"]] == ["solved"]
    assert (unknown["code"], unknown["field"]) == ("not_found", "client_id")
    assert (bad_cursor["code"], bad_cursor["field"]) == ("validation_error", "cursor")


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
        out = await call(client, "update_ticket", action="escalate", ticket_id=ticket_id, priority="urgent")
        again = await call_error(client, "update_ticket", action="escalate", ticket_id=ticket_id)
    assert again["code"] == "validation_error"
    with cs_server.runtime.db.session() as s:
        esc = s.get(CsEscalation, out["escalation_id"])
        assert esc is not None
        assert esc.severity == "urgent"
        assert esc.ticket_id == ticket_id
        assert timedelta(hours=2) <= esc.due_at - before <= timedelta(hours=2, minutes=1)
    assert out["ticket"]["escalated"] is True
    assert "escalated" in out["ticket"]["tags"]
    assert count_rows(cs_server.runtime.db, CsEscalation) == 1


async def test_ticket_errors_name_the_field_and_change_nothing(cs_server):
    client_id = seed(cs_server, lambda s: add_client(s, "Acme").id)
    async with connect(cs_server) as client:
        cases = [
            ("create_ticket", {"client_id": 999, "subject": "x", "body": "y"}, "not_found", "client_id"),
            ("create_ticket", {"client_id": client_id, "subject": "x"}, "validation_error", "body"),
            (
                "create_ticket",
                {"client_id": TOO_BIG, "subject": "x", "body": "y"},
                "validation_error",
                "client_id",
            ),
            (
                "update_ticket",
                {"action": "comment", "ticket_id": 4242, "body": "hi"},
                "not_found",
                "ticket_id",
            ),
            ("update_ticket", {"action": "update", "ticket_id": 4242}, "not_found", "ticket_id"),
            (
                "update_ticket",
                {"action": "comment", "ticket_id": TOO_BIG, "body": "x"},
                "validation_error",
                "ticket_id",
            ),
            ("get_ticket", {}, "validation_error", "ticket_id"),
            ("get_ticket", {"ticket_id": 4242}, "not_found", "ticket_id"),
            ("get_ticket", {"ticket_id": TOO_BIG}, "validation_error", "ticket_id"),
            ("get_ticket", {"ticket_id": 2**40}, "validation_error", "ticket_id"),  # once crashed SQLite
        ]
        for tool, args, code, field in cases:
            err = await call_error(client, tool, **args)
            assert (err["code"], err.get("field")) == (code, field), (tool, args)
        ticket_id = (await call(client, "create_ticket", client_id=client_id, subject="s", body="b"))[
            "ticket"
        ]["id"]
        bad_csat = await call_error(client, "update_ticket", action="resolve", ticket_id=ticket_id, csat=9)
        no_body = await call_error(client, "update_ticket", action="comment", ticket_id=ticket_id)
        nothing = await call_error(client, "update_ticket", action="update", ticket_id=ticket_id)
    assert (bad_csat["code"], bad_csat["field"]) == ("validation_error", "csat")
    assert (no_body["code"], no_body["field"]) == ("validation_error", "body")
    assert nothing["code"] == "validation_error"
    assert count_rows(cs_server.runtime.db, CsTicket) == 1  # only the ticket the test created
    assert count_rows(cs_server.runtime.db, CsTicketComment) == 0
    with cs_server.runtime.db.session() as s:
        assert s.get(CsTicket, ticket_id).status == "new"


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
        missing = await call_error(client, "route_ticket", ticket_id=small_ticket)
        assert missing["field"] == "rules"
        await call(
            client,
            "manage_routing",
            action="add_rule",
            name="vip",
            team="vip",
            match_tier="enterprise",
            position=1,
        )
        rest = await call(client, "manage_routing", action="add_rule", name="rest", team="tier1", position=50)
        routed = await call(client, "route_ticket", ticket_id=small_ticket)
        vip = await call(client, "route_ticket", ticket_id=ent_ticket)
        listed = await call(client, "list_routing")
    assert rest["rule"]["name"] == "rest"
    assert [r["name"] for r in rest["rules"]] == ["vip", "rest"]
    assert routed["rule"]["name"] == "rest"
    assert routed["assignee"] == "bob"
    assert routed["team"] == "tier1"
    assert [(a["agent"], a["open_tickets"]) for a in routed["agents"]] == [("bob", 1), ("ann", 2)]
    assert vip["assignee"] == "cat"
    assert vip["rule"]["match"] == {"tier": "enterprise"}
    loads = {a["agent"]: a["open_tickets"] for a in listed["agents"]}
    assert loads == {"ann": 2, "bob": 2, "cat": 1}
    assert [r["name"] for r in listed["rules"]] == ["vip", "rest"]


async def test_routing_rules_and_agents_are_managed_with_named_errors(cs_server):
    async with connect(cs_server) as client:
        added = await call(client, "manage_routing", action="add_agent", name="dee", team="tier2")
        twice = await call_error(client, "manage_routing", action="add_agent", name="dee", team="tier2")
        off = await call(client, "manage_routing", action="set_agent_active", name="dee", active=False)
        ghost = await call_error(client, "manage_routing", action="set_agent_active", name="nobody")
        no_team = await call_error(client, "manage_routing", action="add_rule", name="r")
        bad_agent = await call_error(
            client, "manage_routing", action="add_rule", name="r", team="t", agent="zed"
        )
        rule = await call(client, "manage_routing", action="add_rule", name="r", team="tier2", agent="dee")
        removed = await call(client, "manage_routing", action="remove_rule", rule_id=rule["rule"]["id"])
        again = await call_error(client, "manage_routing", action="remove_rule", rule_id=rule["rule"]["id"])
        too_big = await call_error(client, "manage_routing", action="remove_rule", rule_id=TOO_BIG)
        missing_id = await call_error(client, "manage_routing", action="remove_rule")
        bad_ticket = await call_error(client, "route_ticket", ticket_id=TOO_BIG)
    assert [(a["agent"], a["team"], a["active"]) for a in added["agents"]] == [("dee", "tier2", True)]
    assert added["rule"] is None
    assert twice["field"] == "name"
    assert [a["active"] for a in off["agents"]] == [False]
    assert (ghost["code"], ghost["field"]) == ("not_found", "name")
    assert (no_team["code"], no_team["field"]) == ("validation_error", "team")
    assert (bad_agent["code"], bad_agent["field"]) == ("not_found", "agent")
    assert removed["rules"] == []
    assert removed["rule"]["id"] == rule["rule"]["id"]
    assert (again["code"], again["field"]) == ("not_found", "rule_id")
    assert (too_big["code"], too_big["field"]) == ("validation_error", "rule_id")
    assert (missing_id["code"], missing_id["field"]) == ("validation_error", "rule_id")
    assert (bad_ticket["code"], bad_ticket["field"]) == ("validation_error", "ticket_id")


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
        hits = await call(client, "search_knowledge_base", query="resetting passwords")
        assert [h["title"] for h in hits["results"]] == ["Reset your password", "Exporting invoices"]
        assert hits["results"][0]["rank"] > hits["results"][1]["rank"]
        assert "[" in hits["results"][0]["snippet"]
        with_drafts = await call(client, "search_knowledge_base", query="password", include_drafts=True)
        assert len(with_drafts["results"]) == 3
        await call(
            client,
            "manage_knowledge_base",
            action="update",
            article_id=a["id"],
            body="Use the single sign-on portal to recover access.",
        )
        after = await call(client, "search_knowledge_base", query="portal")
        gone = await call(client, "search_knowledge_base", query="security")
        article = await call(client, "get_kb_article", article_id=a["id"])
        empty = await call_error(client, "search_knowledge_base", query="!!")
        missing = await call_error(client, "get_kb_article", article_id=99)
        too_big = await call_error(client, "get_kb_article", article_id=TOO_BIG)
        no_title = await call_error(client, "manage_knowledge_base", action="create", body="b")
        no_id = await call_error(client, "manage_knowledge_base", action="update", body="b")
        nothing = await call_error(client, "manage_knowledge_base", action="update", article_id=a["id"])
    assert [h["id"] for h in after["results"]] == [a["id"]]  # the index follows updates
    assert gone["results"] == []
    assert article["body"] == "Use the single sign-on portal to recover access."
    assert (article["title"], article["tags"], article["status"]) == (
        "Reset your password",
        ["account"],
        "published",
    )
    assert empty["field"] == "query"
    assert (missing["code"], missing["field"]) == ("not_found", "article_id")
    assert (too_big["code"], too_big["field"]) == ("validation_error", "article_id")
    assert (no_title["field"], no_id["field"], nothing["field"]) == ("title", "article_id", "body")
    assert count_rows(cs_server.runtime.db, CsKbArticle) == 3


@pytest.mark.parametrize("who", [{"read_only": True}, {"role": "viewer"}])
async def test_readers_search_the_knowledge_base_and_read_tickets_but_write_nothing(make_settings, who):
    """A --read-only server lists the support reads (not the writes); a viewer may call the reads."""
    from revops_cs.server import create_server

    writer = create_server(make_settings())
    try:

        def rows(s):
            c = add_client(s, "Acme")
            t = CsTicket(client_id=c.id, subject="Export", status="open")
            s.add(t)
            s.add(CsKbArticle(title="Export data to CSV", body="Open Reports and click Export.", author="t"))
            s.flush()
            return t.id

        ticket_id = seed(writer, rows)
    finally:
        writer.runtime.db.dispose()
    reader = create_server(make_settings(**who))
    try:
        async with connect(reader) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            hits = await call(client, "search_knowledge_base", query="export")
            article = await call(client, "get_kb_article", article_id=hits["results"][0]["id"])
            ticket = await call(client, "get_ticket", ticket_id=ticket_id)
            listed = await call(client, "list_tickets")
            routing = await call(client, "list_routing")
            # Neither --read-only nor a viewer lists the writes (issue 10: lists follow roles); a
            # viewer who calls one by name anyway is refused for its role
            refused = (
                None
                if who.get("read_only")
                else await call_error(client, "create_ticket", client_id=1, subject="s", body="b")
            )
    finally:
        reader.runtime.db.dispose()
    reads = {"search_knowledge_base", "get_kb_article", "get_ticket", "list_tickets", "list_routing"}
    assert reads <= names
    writes = {"create_ticket", "update_ticket", "manage_knowledge_base", "route_ticket", "manage_routing"}
    assert writes & names == set()
    assert [h["title"] for h in hits["results"]] == ["Export data to CSV"]
    assert article["body"] == "Open Reports and click Export."
    assert ticket["ticket"]["subject"] == "Export"
    assert [t["id"] for t in listed["items"]] == [ticket_id]
    assert routing == {"rules": [], "agents": []}
    if who.get("read_only"):
        assert refused is None
    else:
        assert refused is not None
        assert refused["code"] == "permission_denied"


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
        bad = await call_error(
            client,
            "analyze_support_performance",
            start_date="2026-03-10",
            end_date="2026-03-01",
            as_of="2026-04-01",
        )
        unknown = await call_error(client, "analyze_support_performance", client_id=77)
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
    assert bad["field"] == "end_date"
    assert unknown["code"] == "not_found"


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


async def test_one_sla_configuration_serves_ticket_compliance_and_escalation_deadlines(cs_server):
    """Issue 7: `configure_cs_thresholds section=sla` changed escalations only, while ticket SLA read a
    table nothing wrote. Now the one section is read by both."""
    t0 = at("2026-03-02", 9)

    def rows(s):
        c = add_client(s, "Acme")
        _ticket(s, c.id, "urgent", t0, t0 + timedelta(minutes=30), t0 + timedelta(hours=5))
        return c.id

    client_id = seed(cs_server, rows)
    args = {"start_date": "2026-03-01", "end_date": "2026-03-31", "as_of": "2026-04-01"}
    relaxed_sla = {
        "first_response_minutes": {"urgent": 60, "high": 30, "normal": 240, "low": 480},
        "resolution_minutes": {"urgent": 360, "high": 480, "normal": 1440, "low": 4320},
    }
    async with connect(cs_server) as client:
        default = await call(client, "analyze_support_performance", **args)
        partial = await client.call_tool(
            "configure_cs_thresholds",
            {"section": "sla", "values": {"first_response_minutes": {"urgent": 60}}},
        )
        await call(client, "configure_cs_thresholds", section="sla", values=relaxed_sla)
        relaxed = await call(client, "analyze_support_performance", **args)
        escalation = await call_ok(
            client, "manage_escalations", action="create", client_id=client_id, severity="urgent", title="x"
        )
    assert default["sla"][0]["first_response"] == [0, 1, 0]  # REFERENCE: urgent 10 min / 2 h
    assert default["sla"][0]["resolution"] == [0, 1, 0]
    assert error_of(partial)["field"].startswith("values")  # every priority, or none
    assert relaxed["sla"][0]["target_first_response_min"] == 60
    assert relaxed["sla"][0]["first_response"] == [1, 0, 0]
    assert relaxed["sla"][0]["resolution"] == [1, 0, 0]
    opened = datetime.fromisoformat(escalation["opened_at"])
    assert datetime.fromisoformat(escalation["due_at"]) - opened == timedelta(minutes=360)
