"""Ticket routing: ordered rules (priority/tier/tag → team or agent) and agents with their load.

A ticket goes to the first active rule that matches (lowest position, then id); a rule without a
fixed agent assigns the team's active agent with the fewest open tickets (ties by name).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import Conflict, NotFound, ValidationFailed
from revops_cs.models.clients import CsClient
from revops_cs.models.support import OPEN_STATUSES, CsRoutingRule, CsSupportAgent, CsTicket
from revops_cs.output import Out
from revops_cs.services.tickets import get as get_ticket


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


class Routing(Out):
    rules: list[RuleOut] = Field(description="Active rules in the order they are tried.")
    agents: list[AgentLoad] = Field(description="Agents, least loaded first.")


class RoutingChange(Routing):
    rule: RuleOut | None = Field(description="The rule added or removed; null for agent changes.")


class Routed(Out):
    ticket_id: int = Field(description="Routed ticket.")
    team: str = Field(description="Team set.")
    assignee: str | None = Field(description="Agent assigned.")
    rule: RuleOut = Field(description="The rule that matched.")
    agents: list[AgentLoad] = Field(description="The team's active agents, least loaded first.")
    note: str | None = Field(description="Why no agent was assigned.")


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


def _active_rules(session: Session) -> list[CsRoutingRule]:
    return list(
        session.exec(
            select(CsRoutingRule)
            .where(col(CsRoutingRule.active).is_(True))
            .order_by(col(CsRoutingRule.position), col(CsRoutingRule.id))
        )
    )


def overview(session: Session) -> Routing:
    return Routing(
        rules=[RuleOut.model_validate(r) for r in _active_rules(session)], agents=agent_loads(session)
    )


def after_change(session: Session, rule: CsRoutingRule | None) -> RoutingChange:
    """The rule just added or removed (if any) and the routing set-up after the change."""
    now = overview(session)
    return RoutingChange(
        rule=None if rule is None else RuleOut.model_validate(rule), rules=now.rules, agents=now.agents
    )


def matching_rule(session: Session, ticket: CsTicket, tier: str) -> CsRoutingRule | None:
    tags = set(json.loads(ticket.tags))
    for rule in _active_rules(session):
        if rule.match_priority and rule.match_priority != ticket.priority:
            continue
        if rule.match_tier and rule.match_tier != tier:
            continue
        if rule.match_tag and rule.match_tag not in tags:
            continue
        return rule
    return None


def route(session: Session, ticket_id: int) -> Routed:
    """Set the ticket's team and assignee from the first matching rule."""
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
            hint="Add a rule (manage_routing action=add_rule), e.g. a catch-all with only a team.",
        )
    # The ticket's own current assignment must not count against its candidates.
    if ticket.assignee:
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
    ticket.team, ticket.updated_at = rule.team, datetime.now(UTC)
    session.add(ticket)
    session.flush()
    return Routed(
        ticket_id=ticket.id or 0,
        team=rule.team,
        assignee=ticket.assignee,
        rule=RuleOut.model_validate(rule),
        agents=candidates,
        note=note,
    )


def _agent(session: Session, name: str) -> CsSupportAgent | None:
    return session.exec(select(CsSupportAgent).where(CsSupportAgent.name == name)).first()


def add_rule(
    session: Session,
    *,
    name: str,
    team: str,
    agent: str | None,
    match_priority: str | None,
    match_tier: str | None,
    match_tag: str | None,
    position: int,
) -> CsRoutingRule:
    if agent is not None and _agent(session, agent) is None:
        raise NotFound(f"No agent named {agent!r}.", field="agent", hint="Add it with action=add_agent.")
    rule = CsRoutingRule(
        name=name,
        team=team,
        agent=agent,
        match_priority=match_priority,
        match_tier=match_tier,
        match_tag=match_tag,
        position=position,
    )
    session.add(rule)
    session.flush()
    return rule


def remove_rule(session: Session, rule_id: int) -> CsRoutingRule:
    """Deactivate a rule (kept for the audit trail; no longer tried)."""
    rule = session.get(CsRoutingRule, rule_id)
    if rule is None or not rule.active:
        raise NotFound(f"No active rule with id {rule_id}.", field="rule_id", hint="See list_routing.")
    rule.active = False
    session.add(rule)
    session.flush()
    return rule


def add_agent(session: Session, name: str, team: str) -> None:
    if _agent(session, name) is not None:
        raise Conflict(f"Agent {name!r} exists.", field="name", hint="Use action=set_agent_active.")
    session.add(CsSupportAgent(name=name, team=team))
    session.flush()


def set_agent_active(session: Session, name: str, active: bool) -> None:
    agent = _agent(session, name)
    if agent is None:
        raise NotFound(f"No agent named {name!r}.", field="name", hint="See list_routing.")
    agent.active = active
    session.add(agent)
    session.flush()
