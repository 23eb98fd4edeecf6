"""CS toolset `support`: Support tickets, routing, knowledge base and support performance.

Vendor mirroring order (handle_support_ticket): validate in a short read transaction → send the change
to Zendesk → write the local change (with the Zendesk id) in the call's one write transaction. A
vendor failure therefore leaves nothing local to undo, and no write lock is held during network I/O.
If the local write fails *after* Zendesk accepted the change, the next `sync_zendesk_tickets` brings
the ticket back in by its Zendesk id (created tickets also carry our `external_id` reference).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from revops_core.errors import IntegrationUnavailable, NotFound, ValidationFailed
from revops_core.server import Call
from revops_cs.analytics import sla
from revops_cs.common import (
    AsOf,
    EndDate,
    OptClient,
    StartDate,
    end_of_day,
    get_client,
    needed,
    resolve_as_of,
    start_of_day,
)
from revops_cs.models.clients import CsClient
from revops_cs.models.retention import CsEscalation
from revops_cs.models.support import (
    OPEN_STATUSES,
    CsKbArticle,
    CsRoutingRule,
    CsSlaTarget,
    CsSupportAgent,
    CsSyncCursor,
    CsTicket,
    CsTicketComment,
    Priority,
    TicketStatus,
)
from revops_cs.output import MAX_ID, Out, arg
from revops_cs.toolsets import support as toolset
from revops_cs.vendors import zendesk

TicketId = Annotated[int | None, arg("Ticket id (all actions but create).", ge=1, le=MAX_ID)]
Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=50)]] | None,
    arg("Tags (replace existing ones).", max_length=20),
]


def now_utc() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- shared helpers


def get_ticket(session: Session, ticket_id: int | None) -> CsTicket:
    """The ticket, or `not_found` naming `ticket_id`."""
    if ticket_id is None:
        raise ValidationFailed(
            "This action needs ticket_id.", field="ticket_id", hint="Pass the ticket's id."
        )
    ticket = session.get(CsTicket, ticket_id)
    if ticket is None:
        raise NotFound(f"No ticket with id {ticket_id}.", field="ticket_id")
    return ticket


def sla_targets(session: Session) -> dict[str, sla.Target]:
    """Per-priority targets: cs_sla_target rows over the REFERENCE defaults."""
    targets = {
        p: sla.Target(timedelta(minutes=fr), timedelta(minutes=res))
        for p, (fr, res) in sla.DEFAULT_TARGETS_MINUTES.items()
    }
    for row in session.exec(select(CsSlaTarget)):
        targets[row.priority] = sla.Target(
            timedelta(minutes=row.first_response_minutes), timedelta(minutes=row.resolution_minutes)
        )
    return targets


# --------------------------------------------------------------------------- tickets


class TicketOut(Out):
    id: int = Field(description="Ticket id.")
    client_id: int = Field(description="Client id.")
    subject: str = Field(description="Subject.")
    status: str = Field(description="new|open|pending|hold|solved|closed.")
    priority: str = Field(description="urgent|high|normal|low.")
    assignee: str | None = Field(description="Assigned agent.")
    team: str | None = Field(description="Team set by routing.")
    escalated: bool = Field(description="Escalated.")
    csat: int | None = Field(description="CSAT 1–5 if rated.")
    tags: list[str] = Field(description="Tags.")
    created_at: datetime = Field(description="Created (UTC).")
    first_response_at: datetime | None = Field(description="First public agent reply.")
    solved_at: datetime | None = Field(description="Solved (UTC).")
    zendesk_id: str | None = Field(description="Zendesk id.")


class CommentOut(Out):
    author: str = Field(description="Author.")
    agent: bool = Field(description="Written by an agent.")
    public: bool = Field(description="Visible to the customer.")
    body: str = Field(description="Text.")
    at: datetime = Field(description="Written (UTC).")


class TicketResult(Out):
    action: str = Field(description="Action performed.")
    ticket: TicketOut = Field(description="The ticket after the action.")
    comments: list[CommentOut] | None = Field(default=None, description="Comments (action=get).")
    escalation_id: int | None = Field(default=None, description="Escalation created.")
    escalation_due_at: datetime | None = Field(default=None, description="Escalation SLA due time.")
    mirrored: bool = Field(description="Change reached Zendesk.")
    mirror_note: str | None = Field(default=None, description="Why it was not mirrored.")


def ticket_out(t: CsTicket) -> TicketOut:
    return TicketOut(
        id=t.id or 0,
        client_id=t.client_id,
        subject=t.subject,
        status=t.status,
        priority=t.priority,
        assignee=t.assignee,
        team=t.team,
        escalated=t.escalated,
        csat=t.csat,
        tags=json.loads(t.tags),
        created_at=t.created_at,
        first_response_at=t.first_response_at,
        solved_at=t.solved_at,
        zendesk_id=t.external_id if t.external_source == "zendesk" else None,
    )


@dataclass(frozen=True)
class TicketArgs:
    action: str
    ticket_id: int | None
    client_id: int | None
    subject: str | None
    body: str | None
    priority: str | None
    status: str | None
    assignee: str | None
    tags: list[str] | None
    public: bool
    from_agent: bool
    author: str | None
    csat: int | None


def _validate(session: Session, a: TicketArgs) -> CsTicket | None:
    """Check the arguments against stored state; the existing ticket (None for create)."""
    if a.action == "create":
        get_client(session, needed(a.client_id, "client_id", a.action))
        needed(a.subject, "subject", a.action)
        needed(a.body, "body", a.action)
        return None
    ticket = get_ticket(session, a.ticket_id)
    if a.action == "comment":
        needed(a.body, "body", a.action)
    if a.action == "update" and all(
        v is None for v in (a.subject, a.priority, a.status, a.assignee, a.tags, a.csat)
    ):
        raise ValidationFailed(
            "action=update needs at least one field to change.",
            field="status",
            hint="Pass subject, priority, status, assignee, tags or csat.",
        )
    if a.action in ("update", "comment", "resolve", "escalate") and ticket.status == "closed":
        raise ValidationFailed(
            f"Ticket {ticket.id} is closed.", field="ticket_id", hint="Create a new ticket."
        )
    if a.action == "escalate" and ticket.escalated:
        raise ValidationFailed(f"Ticket {ticket.id} is already escalated.", field="ticket_id")
    return ticket


def _vendor_body(a: TicketArgs, ticket: CsTicket | None, ref: str) -> dict[str, Any]:
    """The Zendesk request body for this action (assignee stays local: agents are not Zendesk users)."""
    if a.action == "create":
        return zendesk.ticket_body(
            subject=a.subject,
            comment=a.body,
            priority=a.priority or "normal",
            tags=a.tags or [],
            external_id=ref,
        )
    if a.action == "comment":
        return zendesk.ticket_body(comment=a.body, public=a.public)
    if a.action == "resolve":
        return zendesk.ticket_body(comment=a.body, public=True, status="solved")
    if a.action == "escalate":
        assert ticket is not None
        return zendesk.ticket_body(
            tags=sorted({*json.loads(ticket.tags), "escalated"}), comment=a.body, public=False
        )
    return zendesk.ticket_body(subject=a.subject, priority=a.priority, status=a.status, tags=a.tags)


def _add_comment(
    session: Session, ticket: CsTicket, a: TicketArgs, actor: str, at: datetime, public: bool
) -> None:
    session.add(
        CsTicketComment(
            ticket_id=ticket.id or 0,
            author=a.author or actor,
            is_agent=a.from_agent,
            public=public,
            body=a.body or "",
            created_at=at,
        )
    )
    if a.from_agent and public and ticket.first_response_at is None:
        ticket.first_response_at = at
    if a.from_agent and ticket.status == "new":
        ticket.status = "open"


def _apply(call: Call, a: TicketArgs, zendesk_id: str | None) -> TicketResult:
    """The local change, in the call's write transaction (re-validated: state may have moved on)."""
    session, now = call.db, now_utc()
    ticket = _validate(session, a)
    escalation: CsEscalation | None = None
    if ticket is None:
        ticket = CsTicket(
            client_id=a.client_id or 0,
            subject=a.subject or "",
            description=a.body or "",
            priority=a.priority or "normal",
            assignee=a.assignee,
            tags=json.dumps(a.tags or []),
            created_at=now,
            updated_at=now,
        )
        if zendesk_id is not None:
            ticket.external_source, ticket.external_id = "zendesk", zendesk_id
        session.add(ticket)
        session.flush()
    elif a.action == "update":
        for name in ("subject", "priority", "assignee", "csat"):
            if getattr(a, name) is not None:
                setattr(ticket, name, getattr(a, name))
        if a.tags is not None:
            ticket.tags = json.dumps(a.tags)
        if a.status is not None:
            if a.status in ("solved", "closed") and ticket.solved_at is None:
                ticket.solved_at = now
            elif a.status in OPEN_STATUSES:
                ticket.solved_at = None
            ticket.status = a.status
    elif a.action == "comment":
        _add_comment(session, ticket, a, call.actor, now, a.public)
    elif a.action == "resolve":
        if a.body:
            _add_comment(session, ticket, a, call.actor, now, True)
        ticket.status, ticket.solved_at = "solved", now
        if a.csat is not None:
            ticket.csat = a.csat
    elif a.action == "escalate":
        severity = a.priority or ticket.priority
        due = now + sla_targets(session)[severity].resolution
        escalation = CsEscalation(
            client_id=ticket.client_id,
            ticket_id=ticket.id,
            severity=severity,
            title=(a.subject or ticket.subject)[:300],
            owner=a.assignee or ticket.assignee,
            opened_at=now,
            due_at=due,
        )
        session.add(escalation)
        if a.body:
            _add_comment(session, ticket, a, call.actor, now, False)
        ticket.escalated = True
        ticket.tags = json.dumps(sorted({*json.loads(ticket.tags), "escalated"}))
        session.flush()
        call.audit_details["escalation_id"] = escalation.id
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    call.target = f"cs_ticket:{ticket.id}"
    return TicketResult(
        action=a.action,
        ticket=ticket_out(ticket),
        escalation_id=escalation.id if escalation else None,
        escalation_due_at=escalation.due_at if escalation else None,
        mirrored=False,
    )


def _snapshot(call: Call, a: TicketArgs) -> tuple[CsTicket | None, zendesk.ZendeskCredentials | str]:
    """Validate in a short read transaction and find out whether/where to mirror."""
    with call.runtime.db.session() as session:
        ticket = _validate(session, a)
    found = zendesk.load_credentials(call.runtime)
    if isinstance(found, tuple):
        return ticket, zendesk.not_configured_reason(found)
    if ticket is not None and not (ticket.external_source == "zendesk" and ticket.external_id):
        return ticket, "The ticket has no Zendesk id (created locally before Zendesk was configured)."
    return ticket, found


async def _mirror(
    call: Call, a: TicketArgs, ticket: CsTicket | None, creds: zendesk.ZendeskCredentials
) -> str:
    """Send the change to Zendesk; the Zendesk ticket id. Raises (nothing local written yet) on failure."""
    ref = f"revops-cs:{uuid.uuid4().hex}"
    async with zendesk.ZendeskClient(
        creds, call.settings, **call.runtime.state.get("zendesk_options", {})
    ) as zd:
        body = _vendor_body(a, ticket, ref)
        if ticket is None:
            remote = await zd.create_ticket(body)
        else:
            remote = await zd.update_ticket(str(ticket.external_id), body)
    if "id" not in remote:
        raise IntegrationUnavailable("Zendesk's answer carries no ticket id.", outcome="unknown")
    return str(remote["id"])


@toolset.tool(tier="write", idempotent=False, open_world=True)
async def handle_support_ticket(
    call: Call,
    action: Annotated[
        Literal["create", "update", "comment", "resolve", "escalate", "get"], arg("What to do.")
    ],
    ticket_id: TicketId = None,
    client_id: Annotated[int | None, arg("Client (create).", ge=1, le=MAX_ID)] = None,
    subject: Annotated[str | None, arg("Subject.", min_length=1, max_length=300)] = None,
    body: Annotated[
        str | None,
        arg("Description (create) or comment text.", min_length=1, max_length=20_000),
    ] = None,
    priority: Annotated[Priority | None, arg("Priority; for escalate the severity.")] = None,
    status: Annotated[TicketStatus | None, arg("New status (update).")] = None,
    assignee: Annotated[str | None, arg("Agent name.", min_length=1, max_length=200)] = None,
    tags: Tags = None,
    public: Annotated[bool, arg("Comment visible to the customer.")] = True,
    from_agent: Annotated[bool, arg("Comment written by an agent (false: customer).")] = True,
    author: Annotated[str | None, arg("Comment author.", min_length=1, max_length=200)] = None,
    csat: Annotated[int | None, arg("Customer rating 1–5.", ge=1, le=5)] = None,
) -> TicketResult:
    """Create, update, comment on, resolve, escalate (SLA-due escalation) or get a ticket; Zendesk mirror."""
    # Stored locally; mirrored to Zendesk when configured (the result says whether, and why not).
    a = TicketArgs(
        action,
        ticket_id,
        client_id,
        subject,
        body,
        priority,
        status,
        assignee,
        tags,
        public,
        from_agent,
        author,
        csat,
    )
    if action == "get":
        call.no_change()
        return await call.in_thread(partial(_get_ticket_result, call, ticket_id))
    ticket, mirror = await call.in_thread(partial(_snapshot, call, a))
    zendesk_id, note = None, mirror if isinstance(mirror, str) else None
    if isinstance(mirror, zendesk.ZendeskCredentials):
        if _vendor_body(a, ticket, "")["ticket"]:
            zendesk_id = await _mirror(call, a, ticket, mirror)
        else:
            note = "Only local fields changed (assignee, CSAT); Zendesk was not called."
    result = await call.in_thread(partial(_apply, call, a, zendesk_id if action == "create" else None))
    result.mirrored, result.mirror_note = zendesk_id is not None, note
    call.audit_details["mirrored"] = result.mirrored
    return result


def _get_ticket_result(call: Call, ticket_id: int | None) -> TicketResult:
    ticket = get_ticket(call.db, ticket_id)
    comments = call.db.exec(
        select(CsTicketComment)
        .where(CsTicketComment.ticket_id == ticket.id)
        .order_by(col(CsTicketComment.created_at), col(CsTicketComment.id))
        .limit(100)
    ).all()
    return TicketResult(
        action="get",
        ticket=ticket_out(ticket),
        comments=[
            CommentOut(author=c.author, agent=c.is_agent, public=c.public, body=c.body, at=c.created_at)
            for c in comments
        ],
        mirrored=False,
        mirror_note="Read from the local store.",
    )


# --------------------------------------------------------------------------- routing


class AgentLoad(Out):
    agent: str = Field(description="Agent name.")
    team: str = Field(description="Team.")
    active: bool = Field(description="Receives tickets.")
    open_tickets: int = Field(description="Open tickets (load).")


class RuleOut(Out):
    id: int = Field(description="Rule id.")
    name: str = Field(description="Name.")
    position: int = Field(description="Order, lowest first.")
    match: dict[str, str] = Field(description="priority/tier/tag; absent = any.")
    team: str = Field(description="Team it routes to.")
    agent: str | None = Field(description="Fixed agent.")


class RoutingResult(Out):
    action: str = Field(description="Action performed.")
    ticket_id: int | None = Field(default=None, description="Routed ticket.")
    team: str | None = Field(default=None, description="Team set.")
    assignee: str | None = Field(default=None, description="Agent assigned.")
    rule: RuleOut | None = Field(default=None, description="Matched or added rule.")
    rules: list[RuleOut] = Field(default_factory=list, description="Active rules (list).")
    agents: list[AgentLoad] = Field(default_factory=list, description="Agents, least loaded first.")
    note: str | None = Field(default=None, description="Why no agent was assigned.")


def _rule_out(r: CsRoutingRule) -> RuleOut:
    match = {"priority": r.match_priority, "tier": r.match_tier, "tag": r.match_tag}
    return RuleOut(
        id=r.id or 0,
        name=r.name,
        position=r.position,
        match={k: v for k, v in match.items() if v},
        team=r.team,
        agent=r.agent,
    )


def agent_loads(session: Session, team: str | None = None) -> list[AgentLoad]:
    """Agents (of a team) with their open-ticket count, least loaded first, ties by name."""
    load = dict(
        session.exec(
            select(CsTicket.assignee, func.count())
            .where(col(CsTicket.status).in_(OPEN_STATUSES), col(CsTicket.assignee).is_not(None))
            .group_by(CsTicket.assignee)
        ).all()
    )
    query = select(CsSupportAgent)
    if team is not None:
        query = query.where(CsSupportAgent.team == team)
    agents = [
        AgentLoad(agent=a.name, team=a.team, active=a.active, open_tickets=int(load.get(a.name, 0)))
        for a in session.exec(query)
    ]
    return sorted(agents, key=lambda x: (x.open_tickets, x.agent))


def matching_rule(session: Session, ticket: CsTicket, tier: str) -> CsRoutingRule | None:
    tags = set(json.loads(ticket.tags))
    rules = session.exec(
        select(CsRoutingRule)
        .where(col(CsRoutingRule.active).is_(True))
        .order_by(col(CsRoutingRule.position), col(CsRoutingRule.id))
    )
    for rule in rules:
        if rule.match_priority and rule.match_priority != ticket.priority:
            continue
        if rule.match_tier and rule.match_tier != tier:
            continue
        if rule.match_tag and rule.match_tag not in tags:
            continue
        return rule
    return None


def _route(call: Call, ticket_id: int | None) -> RoutingResult:
    session = call.db
    ticket = get_ticket(session, ticket_id)
    if ticket.status not in OPEN_STATUSES:
        raise ValidationFailed(
            f"Ticket {ticket.id} is {ticket.status}; only open tickets are routed.", field="ticket_id"
        )
    client = session.get(CsClient, ticket.client_id)
    rule = matching_rule(session, ticket, client.tier if client else "")
    if rule is None:
        raise NotFound(
            "No active routing rule matches this ticket.",
            field="rules",
            hint="Add a rule (route_ticket action=add_rule), e.g. a catch-all with only a team.",
        )
    # The ticket's own current assignment must not count against its candidates.
    if ticket.assignee and ticket.status in OPEN_STATUSES:
        ticket.assignee = None
        session.add(ticket)
        session.flush()
    candidates = [a for a in agent_loads(session, rule.team) if a.active]
    note = None
    if rule.agent:
        ticket.assignee = rule.agent
    elif candidates:
        ticket.assignee = candidates[0].agent
    else:
        note = f"Team {rule.team} has no active agents; only the team was set."
    ticket.team, ticket.updated_at = rule.team, now_utc()
    session.add(ticket)
    session.flush()
    call.target = f"cs_ticket:{ticket.id}"
    call.audit_details.update(rule_id=rule.id, assignee=ticket.assignee)
    return RoutingResult(
        action="route",
        ticket_id=ticket.id,
        team=ticket.team,
        assignee=ticket.assignee,
        rule=_rule_out(rule),
        agents=candidates,
        note=note,
    )


@toolset.tool(tier="write", idempotent=False)
def route_ticket(
    call: Call,
    action: Annotated[
        Literal["route", "add_rule", "remove_rule", "add_agent", "set_agent_active", "list"],
        arg("route a ticket, manage rules/agents, or list them."),
    ],
    ticket_id: Annotated[int | None, arg("route: ticket id.", ge=1, le=MAX_ID)] = None,
    name: Annotated[str | None, arg("Rule or agent name.", min_length=1, max_length=200)] = None,
    team: Annotated[str | None, arg("Team.", min_length=1, max_length=100)] = None,
    agent: Annotated[str | None, arg("Rule: fixed agent.", min_length=1, max_length=200)] = None,
    match_priority: Annotated[Priority | None, arg("Rule condition.")] = None,
    match_tier: Annotated[
        Literal["enterprise", "mid_market", "smb"] | None, arg("Rule condition: client tier.")
    ] = None,
    match_tag: Annotated[str | None, arg("Rule condition.", min_length=1, max_length=100)] = None,
    position: Annotated[int, arg("Rule order, lowest first.", ge=0, le=10_000)] = 100,
    rule_id: Annotated[int | None, arg("Rule to remove.", ge=1, le=MAX_ID)] = None,
    active: Annotated[bool, arg("set_agent_active: active or not.")] = True,
) -> RoutingResult:
    """Route a ticket by rules (priority/tier/tag → team/agent) to the agent with fewest open tickets."""
    session = call.db
    if action == "route":
        return _route(call, ticket_id)
    if action == "list":
        call.no_change()
        rules = session.exec(
            select(CsRoutingRule)
            .where(col(CsRoutingRule.active).is_(True))
            .order_by(col(CsRoutingRule.position))
        ).all()
        return RoutingResult(action=action, rules=[_rule_out(r) for r in rules], agents=agent_loads(session))
    if action == "add_rule":
        if (
            agent is not None
            and session.exec(select(CsSupportAgent).where(CsSupportAgent.name == agent)).first() is None
        ):
            raise NotFound(f"No agent named {agent!r}.", field="agent", hint="Add it with action=add_agent.")
        rule = CsRoutingRule(
            name=needed(name, "name", action),
            team=needed(team, "team", action),
            agent=agent,
            match_priority=match_priority,
            match_tier=match_tier,
            match_tag=match_tag,
            position=position,
        )
        session.add(rule)
        session.flush()
        call.target = f"cs_routing_rule:{rule.id}"
        return RoutingResult(action=action, rule=_rule_out(rule))
    if action == "remove_rule":
        rule = session.get(CsRoutingRule, needed(rule_id, "rule_id", action))
        if rule is None or not rule.active:
            raise NotFound(f"No active rule with id {rule_id}.", field="rule_id")
        rule.active = False
        session.add(rule)
        call.target = f"cs_routing_rule:{rule.id}"
        return RoutingResult(action=action, rule=_rule_out(rule))
    agent_name = needed(name, "name", action)
    existing = session.exec(select(CsSupportAgent).where(CsSupportAgent.name == agent_name)).first()
    if action == "add_agent":
        if existing is not None:
            raise ValidationFailed(
                f"Agent {agent_name!r} exists.", field="name", hint="Use set_agent_active."
            )
        session.add(CsSupportAgent(name=agent_name, team=needed(team, "team", action)))
    else:
        if existing is None:
            raise NotFound(f"No agent named {agent_name!r}.", field="name")
        existing.active = active
        session.add(existing)
    session.flush()
    call.target = f"cs_support_agent:{agent_name}"
    return RoutingResult(action=action, agents=agent_loads(session))


# --------------------------------------------------------------------------- knowledge base


class ArticleHit(Out):
    id: int = Field(description="Article id.")
    title: str = Field(description="Title.")
    status: str = Field(description="draft|published|archived.")
    rank: float | None = Field(default=None, description="Relevance, higher is better.")
    snippet: str = Field(description="Excerpt; [term] marks hits.")


class KbResult(Out):
    action: str = Field(description="Action performed.")
    article: ArticleHit | None = Field(default=None, description="Article created, updated or read.")
    body: str | None = Field(default=None, description="Full body (get).")
    tags: list[str] | None = Field(default=None, description="Tags (get).")
    results: list[ArticleHit] = Field(default_factory=list, description="Search results, best first.")


_TOKEN = re.compile(r"\w+", re.UNICODE)


def search_articles(session: Session, query: str, *, include_drafts: bool, limit: int) -> list[ArticleHit]:
    """Ranked full-text search: FTS5 bm25 on SQLite, ts_rank on PostgreSQL; any-term match."""
    tokens = [t for t in _TOKEN.findall(query.lower()) if len(t) >= 2][:20]
    if not tokens:
        raise ValidationFailed("The query has no searchable words.", field="query", hint="Use plain words.")
    status_sql = "" if include_drafts else " AND a.status = 'published'"
    if session.get_bind().dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in tokens)  # quoted: user text is never FTS syntax
        sql = (
            "SELECT a.id, a.title, a.status, -bm25(cs_kb_article_fts, 5.0, 1.0, 2.0) AS rank, "
            "snippet(cs_kb_article_fts, 1, '[', ']', '…', 16) AS snip "
            "FROM cs_kb_article_fts JOIN cs_kb_article a ON a.id = cs_kb_article_fts.rowid "
            f"WHERE cs_kb_article_fts MATCH :q{status_sql} ORDER BY rank DESC, a.id LIMIT :n"
        )
    else:
        match = " or ".join(tokens)
        sql = (
            "SELECT a.id, a.title, a.status, ts_rank(a.search, q) AS rank, "
            "ts_headline('english', a.body, q, 'StartSel=[, StopSel=], MaxWords=20, MinWords=6') AS snip "
            "FROM cs_kb_article a, websearch_to_tsquery('english', :q) q "
            f"WHERE a.search @@ q{status_sql} ORDER BY rank DESC, a.id LIMIT :n"
        )
    rows = session.connection().execute(text(sql), {"q": match, "n": limit}).all()
    return [
        ArticleHit(id=r[0], title=r[1], status=r[2], rank=round(float(r[3]), 6), snippet=r[4]) for r in rows
    ]


def _hit(a: CsKbArticle) -> ArticleHit:
    return ArticleHit(id=a.id or 0, title=a.title, status=a.status, snippet=a.body[:200])


@toolset.tool(tier="write", idempotent=False)
def manage_knowledge_base(
    call: Call,
    action: Annotated[Literal["create", "update", "get", "search"], arg("What to do.")],
    article_id: Annotated[int | None, arg("Article (update, get).", ge=1, le=MAX_ID)] = None,
    title: Annotated[str | None, arg("Title.", min_length=1, max_length=300)] = None,
    body: Annotated[str | None, arg("Body text.", min_length=1, max_length=100_000)] = None,
    tags: Tags = None,
    status: Annotated[Literal["draft", "published", "archived"] | None, arg("Status.")] = None,
    query: Annotated[str | None, arg("Search words.", min_length=1, max_length=500)] = None,
    include_drafts: Annotated[bool, arg("Search drafts/archived too.")] = False,
    limit: Annotated[int, arg("Max search results.", ge=1, le=50)] = 10,
) -> KbResult:
    """Create, update, read or full-text search knowledge-base articles (ranked, with snippets)."""
    session = call.db
    if action == "search":
        call.no_change()
        hits = search_articles(
            session, needed(query, "query", action), include_drafts=include_drafts, limit=limit
        )
        return KbResult(action=action, results=hits)
    if action == "create":
        article = CsKbArticle(
            title=needed(title, "title", action),
            body=needed(body, "body", action),
            tags=json.dumps(tags or []),
            status=status or "published",
            author=call.actor,
        )
    else:
        article = session.get(CsKbArticle, needed(article_id, "article_id", action))
        if article is None:
            raise NotFound(f"No article with id {article_id}.", field="article_id")
        if action == "get":
            call.no_change()
            return KbResult(
                action=action, article=_hit(article), body=article.body, tags=json.loads(article.tags)
            )
        if all(v is None for v in (title, body, tags, status)):
            raise ValidationFailed(
                "Nothing to update.", field="body", hint="Pass title, body, tags or status."
            )
        article.title = title or article.title
        article.body = body or article.body
        article.tags = json.dumps(tags) if tags is not None else article.tags
        article.status = status or article.status
        article.updated_at = now_utc()
    session.add(article)
    session.flush()
    call.target = f"cs_kb_article:{article.id}"
    return KbResult(action=action, article=_hit(article))


# --------------------------------------------------------------------------- performance


class Times(Out):
    tickets: int = Field(description="Tickets measured.")
    median_min: float | None = Field(description="Median, minutes.")
    p90_min: float | None = Field(description="P90, minutes.")


class SlaRow(Out):
    priority: str = Field(description="Priority.")
    target_first_response_min: int = Field(description="Target, minutes.")
    target_resolution_min: int = Field(description="Resolution target, minutes.")
    first_response: list[int] = Field(description="[met, breached, pending].")
    resolution: list[int] = Field(description="[met, breached, pending].")
    first_response_compliance: float | None = Field(description="% met of judged.")
    resolution_compliance: float | None = Field(description="% met of judged.")


class SupportPerformance(Out):
    as_of: date = Field(description="Evaluation date.")
    start_date: date = Field(description="Tickets created from.")
    end_date: date = Field(description="Tickets created through.")
    tickets: int = Field(description="Tickets created in the period.")
    first_response: Times = Field(description="First public agent reply − created.")
    resolution: Times = Field(description="Solved − created.")
    sla: list[SlaRow] = Field(description="Per priority; open past target = breached.")
    first_response_compliance: float | None = Field(description="Overall % met.")
    resolution_compliance: float | None = Field(description="Overall % met.")
    backlog: dict[str, dict[str, int]] = Field(description="Open at as_of: priority → age bucket → count.")
    csat_responses: int = Field(description="Tickets rated.")
    csat: float | None = Field(description="% of ratings 4–5.")


def first_public_agent_replies(session: Session, ticket_ids: list[int]) -> dict[int, datetime]:
    """Earliest public agent comment per ticket (the REFERENCE definition of first response)."""
    out: dict[int, datetime] = {}
    for chunk in range(0, len(ticket_ids), 500):
        rows = session.exec(
            select(CsTicketComment.ticket_id, func.min(CsTicketComment.created_at))
            .where(
                col(CsTicketComment.ticket_id).in_(ticket_ids[chunk : chunk + 500]),
                col(CsTicketComment.is_agent).is_(True),
                col(CsTicketComment.public).is_(True),
            )
            .group_by(CsTicketComment.ticket_id)
        ).all()
        for tid, at in rows:
            # func.min loses the column type on SQLite: normalise to an aware datetime.
            value = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            out[tid] = value if value.tzinfo else value.replace(tzinfo=UTC)
    return out


def period(start: date | None, end: date | None, as_of: date, default_days: int) -> tuple[date, date]:
    """[start, end], defaulting to the `default_days` ending on as_of; end may not pass as_of."""
    end = end or as_of
    if start is None:
        if end.toordinal() <= default_days:
            raise ValidationFailed("The date is too early.", field="as_of", hint="Use a date after year 1.")
        start = end - timedelta(days=default_days - 1)
    if end < start:
        raise ValidationFailed(
            f"end_date ({end}) is before start_date ({start}).", field="end_date", hint="Swap the dates."
        )
    if end > as_of:
        raise ValidationFailed(
            "end_date is after as_of.", field="end_date", hint="Use a date on or before as_of."
        )
    return start, end


def performance(
    session: Session, client_id: int | None, start: date, end: date, as_of: date
) -> SupportPerformance:
    """Support performance over tickets created in [start, end], judged at the end of `as_of`."""
    now = min(end_of_day(as_of), now_utc())
    query = select(CsTicket).where(
        col(CsTicket.created_at) >= start_of_day(start), col(CsTicket.created_at) < end_of_day(end)
    )
    backlog_query = select(CsTicket).where(col(CsTicket.created_at) < now)
    if client_id is not None:
        query = query.where(CsTicket.client_id == client_id)
        backlog_query = backlog_query.where(CsTicket.client_id == client_id)
    tickets = session.exec(query).all()
    replies = first_public_agent_replies(session, [t.id or 0 for t in tickets])
    targets = sla_targets(session)
    times = [
        sla.TicketTimes(t.priority, t.created_at, replies.get(t.id or 0, t.first_response_at), t.solved_at)
        for t in tickets
    ]
    fr = [
        sla.minutes(x.first_response_at - x.created_at)
        for x in times
        if x.first_response_at and x.first_response_at <= now
    ]
    res = [sla.minutes(x.solved_at - x.created_at) for x in times if x.solved_at and x.solved_at <= now]
    by_priority = sla.compliance_by_priority(times, targets, now)
    total = sla.PriorityCompliance()
    rows = []
    for p, c in sorted(
        by_priority.items(), key=lambda kv: list(targets).index(kv[0]) if kv[0] in targets else 99
    ):
        for mine, tot in ((c.first_response, total.first_response), (c.resolution, total.resolution)):
            tot.met, tot.breached, tot.pending = (
                tot.met + mine.met,
                tot.breached + mine.breached,
                tot.pending + mine.pending,
            )
        rows.append(
            SlaRow(
                priority=p,
                target_first_response_min=int(sla.minutes(targets[p].first_response)),
                target_resolution_min=int(sla.minutes(targets[p].resolution)),
                first_response=[c.first_response.met, c.first_response.breached, c.first_response.pending],
                resolution=[c.resolution.met, c.resolution.breached, c.resolution.pending],
                first_response_compliance=c.first_response.rate,
                resolution_compliance=c.resolution.rate,
            )
        )
    backlog: dict[str, dict[str, int]] = {}
    for t in session.exec(backlog_query):
        solved = t.solved_at is not None and t.solved_at < now
        if solved or (t.solved_at is None and t.status not in OPEN_STATUSES):
            continue
        bucket = backlog.setdefault(t.priority, {})
        label = sla.age_bucket(now - t.created_at)
        bucket[label] = bucket.get(label, 0) + 1
    ratings = [t.csat for t in tickets if t.csat is not None]
    from revops_cs.analytics.surveys import csat as csat_score

    def _times(values: list[float]) -> Times:
        d = sla.distribution(values)
        return Times(tickets=d.count, median_min=d.median, p90_min=d.p90)

    return SupportPerformance(
        as_of=as_of,
        start_date=start,
        end_date=end,
        tickets=len(tickets),
        first_response=_times(fr),
        resolution=_times(res),
        sla=rows,
        first_response_compliance=total.first_response.rate,
        resolution_compliance=total.resolution.rate,
        backlog=backlog,
        csat_responses=len(ratings),
        csat=csat_score(ratings),
    )


@toolset.tool(tier="read")
def analyze_support_performance(
    call: Call,
    client_id: OptClient = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    as_of: AsOf = None,
) -> SupportPerformance:
    """Support KPIs for tickets created in a period (default 90 days): response/resolution median and p90,
    SLA compliance, backlog by age, CSAT."""
    day = resolve_as_of(as_of)
    start, end = period(start_date, end_date, day, 90)
    if client_id is not None:
        get_client(call.db, client_id)
    return performance(call.db, client_id, start, end, day)


# --------------------------------------------------------------------------- Zendesk sync


class SyncResult(Out):
    pages: int = Field(description="Export pages fetched.")
    fetched: int = Field(description="Tickets received.")
    created: int = Field(description="New local tickets.")
    updated: int = Field(description="Local tickets updated.")
    skipped_unmatched: int = Field(description="Organization maps to no client.")
    end_of_stream: bool = Field(description="False: more pages remain; call again to continue.")
    cursor_saved: bool = Field(description="Cursor stored for the next incremental run.")


def client_by_org(session: Session) -> dict[str, int]:
    """Zendesk organization id → client id, from `CsClient.external_ids["zendesk"]`."""
    out: dict[str, int] = {}
    for cid, ext in session.exec(
        select(CsClient.id, CsClient.external_ids).where(col(CsClient.deleted_at).is_(None))
    ):
        try:
            org = json.loads(ext or "{}").get("zendesk")
        except ValueError:
            continue
        if org is not None and cid is not None:
            out[str(org)] = cid
    return out


def _store_export(
    call: Call, tickets: list[dict[str, Any]], metrics: dict[str, dict[str, Any]], cursor: str | None
) -> SyncResult:
    session = call.db
    orgs = client_by_org(session)
    result = SyncResult(
        pages=0,
        fetched=len(tickets),
        created=0,
        updated=0,
        skipped_unmatched=0,
        end_of_stream=False,
        cursor_saved=False,
    )
    for remote in tickets:
        zid = str(remote.get("id"))
        client_id = orgs.get(str(remote.get("organization_id")))
        if client_id is None:
            result.skipped_unmatched += 1
            continue
        try:
            values = zendesk.local_fields(remote, metrics.get(zid))
        except (ValueError, TypeError) as exc:
            raise IntegrationUnavailable(
                f"Zendesk ticket {zid} has an unreadable field; nothing was stored.",
                outcome="failed",
                retryable=False,
            ) from exc
        local = session.exec(
            select(CsTicket).where(CsTicket.external_source == "zendesk", CsTicket.external_id == zid)
        ).first()
        if local is None:
            local = CsTicket(client_id=client_id, external_source="zendesk", external_id=zid, **values)
            result.created += 1
        else:
            for key, value in values.items():
                setattr(local, key, value)
            local.client_id = client_id
            result.updated += 1
        session.add(local)
    if cursor:
        row = session.exec(
            select(CsSyncCursor).where(CsSyncCursor.vendor == "zendesk", CsSyncCursor.stream == "tickets")
        ).first()
        row = row or CsSyncCursor(vendor="zendesk", stream="tickets", cursor=cursor)
        row.cursor, row.synced_at = cursor, now_utc()
        session.add(row)
        result.cursor_saved = True
    session.flush()
    call.target = "zendesk:tickets"
    call.audit_details.update(created=result.created, updated=result.updated)
    return result


def _stored_cursor(call: Call) -> str | None:
    with call.runtime.db.session() as session:
        row = session.exec(
            select(CsSyncCursor).where(CsSyncCursor.vendor == "zendesk", CsSyncCursor.stream == "tickets")
        ).first()
        return row.cursor if row else None


@toolset.tool(tier="write", idempotent=True, open_world=True)
async def sync_zendesk_tickets(
    call: Call,
    restart: Annotated[bool, arg("Ignore the stored cursor and export from `since`.")] = False,
    since: Annotated[date | None, arg("Start date for a first/restarted export.")] = None,
    max_pages: Annotated[int, arg("Stop after this many pages.", ge=1, le=100)] = 10,
) -> SyncResult:
    """Import Zendesk tickets incrementally (resumable cursor); client = external_ids["zendesk"] org id."""
    creds = await call.in_thread(partial(zendesk.require_credentials, call.runtime))
    cursor = None if restart else await call.in_thread(partial(_stored_cursor, call))
    start_time = int(start_of_day(since).timestamp()) if since else 0
    tickets: list[dict[str, Any]] = []
    metrics: dict[str, dict[str, Any]] = {}
    pages, done = 0, False
    async with zendesk.ZendeskClient(
        creds, call.settings, **call.runtime.state.get("zendesk_options", {})
    ) as zd:
        while pages < max_pages and not done:
            page = await zd.export_tickets(start_time=start_time, cursor=cursor)
            pages += 1
            tickets.extend(t for t in page.get("tickets") or [] if isinstance(t, dict))
            for m in page.get("metric_sets") or []:
                if isinstance(m, dict):
                    metrics[str(m.get("ticket_id"))] = m
            cursor = page.get("after_cursor") or cursor
            done = bool(page.get("end_of_stream"))
            if call.ctx is not None:
                await call.ctx.report_progress(
                    pages, None if done else max_pages, f"{len(tickets)} tickets fetched"
                )
    # Everything fetched is written with the cursor in one transaction: a failure above stores nothing.
    result = await call.in_thread(partial(_store_export, call, tickets, metrics, cursor))
    result.pages, result.end_of_stream = pages, done
    return result
