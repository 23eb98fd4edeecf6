"""Retention tools: escalations with an SLA deadline from their severity — list, open, resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from revops_core.params import Cursor, Id, Limit, Text, require
from revops_core.server import Call
from revops_cs.params import OptClient
from revops_cs.services import escalations
from revops_cs.services.clients import get_client
from revops_cs.services.thresholds import Severity
from revops_cs.toolsets import retention as toolset

EscalationId = Annotated[int | None, Id("escalation", see="list_escalations", optional="needed for resolve")]


@toolset.tool(tier="read", title="List escalations", replaces="manage_escalations action=list")
def list_escalations(
    call: Call,
    client_id: OptClient = None,
    status: Annotated[escalations.Status | None, Field(description="Only open or resolved.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> escalations.EscalationPage:
    """Escalations, soonest SLA deadline first, with breach flags."""
    if client_id is not None:
        get_client(call.db, client_id)
    return escalations.page(
        call.db, call.tenant, client_id=client_id, status=status, limit=limit, cursor=cursor
    )


@toolset.tool(tier="write", idempotent=False, title="Open/resolve escalation")
def manage_escalations(
    call: Call,
    action: Annotated[Literal["create", "resolve"], Field(description="What to do.")],
    client_id: Annotated[int | None, Id("client", see="list_clients", optional="needed for create")] = None,
    severity: Annotated[Severity | None, Field(description="create: sets the SLA deadline.")] = None,
    title: Annotated[str | None, Text("create: title.", max_length=300)] = None,
    opened_at: Annotated[datetime | None, Field(description="create: raised at (default now).")] = None,
    escalation_id: EscalationId = None,
    resolution: Annotated[str | None, Text("resolve: resolution note.", max_length=2000)] = None,
) -> escalations.EscalationOut:
    """Open an escalation (due = raised + SLA target of its severity), or resolve one."""
    if action == "create":
        client = get_client(call.db, require(client_id, "client_id", when="action=create"))
        esc = escalations.open_escalation(
            call.db,
            client,
            severity=require(severity, "severity", when="action=create"),
            title=require(title, "title", when="action=create"),
            opened_at=opened_at,
        )
    else:
        esc = escalations.resolve(
            call.db, require(escalation_id, "escalation_id", when="action=resolve"), resolution
        )
    call.target = f"cs_escalation:{esc.id}"
    return escalations.EscalationOut.model_validate(esc)
