"""CS toolset `support`: ticket routing — route a ticket, see and change the rules and agents."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import Count, Id, Text, require
from revops_core.server import Call
from revops_cs.models.support import Priority
from revops_cs.params import TicketId
from revops_cs.services import routing
from revops_cs.services.routing import Routed, Routing, RoutingChange
from revops_cs.toolsets import support as toolset


@toolset.tool(tier="read", title="List routing", replaces="route_ticket action=list")
def list_routing(call: Call) -> Routing:
    """Active routing rules in the order they are tried, and agents with their open-ticket load."""
    return routing.overview(call.db)


@toolset.tool(tier="write", idempotent=False, title="Route a ticket", target="cs_ticket:{ticket_id}")
def route_ticket(call: Call, ticket_id: TicketId) -> Routed:
    """Route an open ticket by the first matching rule to its team's least-loaded active agent."""
    routed = routing.route(call.db, ticket_id)
    call.audit_details.update(rule_id=routed.rule.id, assignee=routed.assignee)
    return routed


@toolset.tool(
    tier="write",
    idempotent=False,
    title="Change routing",
    replaces="route_ticket action=add_rule|remove_rule|add_agent|set_agent_active",
)
def manage_routing(
    call: Call,
    action: Annotated[
        Literal["add_rule", "remove_rule", "add_agent", "set_agent_active"],
        Field(description="What to do."),
    ],
    name: Annotated[str | None, Text("Rule or agent name.")] = None,
    team: Annotated[str | None, Text("Team.", max_length=100)] = None,
    agent: Annotated[str | None, Text("Rule: fixed agent.")] = None,
    match_priority: Annotated[Priority | None, Field(description="Rule condition.")] = None,
    match_tier: Annotated[
        Literal["enterprise", "mid_market", "smb"] | None,
        Field(description="Rule condition."),
    ] = None,
    match_tag: Annotated[str | None, Text("Rule condition.", max_length=100)] = None,
    position: Annotated[int, Count("Rule order, lowest first.", le=10_000)] = 100,
    rule_id: Annotated[int | None, Id("rule", see="list_routing", optional="needed for remove_rule")] = None,
    active: Annotated[bool, Field(description="Agent receives tickets.")] = True,
) -> RoutingChange:
    """Add/remove a routing rule (priority/tier/tag → team/agent); add or (de)activate an agent."""
    session, rule = call.db, None
    if action == "add_rule":
        rule = routing.add_rule(
            session,
            name=require(name, "name", when="action=add_rule"),
            team=require(team, "team", when="action=add_rule"),
            agent=agent,
            match_priority=match_priority,
            match_tier=match_tier,
            match_tag=match_tag,
            position=position,
        )
    elif action == "remove_rule":
        rule = routing.remove_rule(session, require(rule_id, "rule_id", when="action=remove_rule"))
    else:
        agent_name = require(name, "name", when=f"action={action}")
        if action == "add_agent":
            routing.add_agent(session, agent_name, require(team, "team", when="action=add_agent"))
        else:
            routing.set_agent_active(session, agent_name, active)
        call.target = f"cs_support_agent:{agent_name}"
    if rule is not None:
        call.target = f"cs_routing_rule:{rule.id}"
    return routing.after_change(session, rule)
