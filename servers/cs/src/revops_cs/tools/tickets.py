"""CS toolset `support`: support tickets — list, read, create and change them.

Vendor mirroring order (create_ticket, update_ticket): validate in a short read transaction → send
the change to Zendesk → write the local change (with the Zendesk id) in the call's one write
transaction. A vendor failure therefore leaves nothing local to undo, and no write lock is held
during network I/O. If the local write fails *after* Zendesk accepted the change, the next
`sync_zendesk_tickets` brings the ticket back in by its Zendesk id (created tickets also carry our
`external_id` reference). The sequence lives in `services/zendesk_sync.apply_mirrored`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import Cursor, Limit, Text, WholeNumber
from revops_core.server import Call
from revops_cs.models.support import Priority, TicketStatus
from revops_cs.params import ClientId, OptClient, Tags, TicketId
from revops_cs.services import tickets, zendesk_sync
from revops_cs.services.tickets import TicketChange, TicketDetail, TicketOut, TicketResult
from revops_cs.toolsets import support as toolset

Body = Annotated[str, Text("Description.", max_length=20_000)]
Subject = Annotated[str, Text("Subject.", max_length=300)]
Agent = Annotated[str | None, Text("Agent name.")]


@toolset.tool(tier="read", title="List tickets")
def list_tickets(
    call: Call,
    client_id: OptClient = None,
    status: Annotated[TicketStatus | None, Field(description="Filter.")] = None,
    open_only: Annotated[bool, Field(description="Only new/open/pending/hold.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TicketOut]:
    """Tickets, newest first, one page at a time."""
    return tickets.page(
        call.db, client_id=client_id, status=status, open_only=open_only, limit=limit, cursor=cursor
    )


@toolset.tool(tier="read", title="Get a ticket", replaces="handle_support_ticket action=get")
def get_ticket(call: Call, ticket_id: TicketId) -> TicketDetail:
    """One ticket with its comments."""
    return tickets.detail(call.db, ticket_id)


@toolset.tool(
    tier="write",
    idempotent=False,
    open_world=True,
    title="Create a ticket",
    replaces="handle_support_ticket action=create",
)
async def create_ticket(
    call: Call,
    client_id: ClientId,
    subject: Subject,
    body: Body,
    priority: Annotated[Priority, Field(description="Priority.")] = "normal",
    assignee: Agent = None,
    tags: Tags = None,
) -> TicketResult:
    """Open a ticket for a client; mirrored to Zendesk when configured."""
    change = TicketChange(
        "create",
        client_id=client_id,
        subject=subject,
        body=body,
        priority=priority,
        assignee=assignee,
        tags=tags,
    )
    return await zendesk_sync.apply_mirrored(call, change)


@toolset.tool(
    tier="write",
    idempotent=False,
    open_world=True,
    title="Update a ticket",
    target="cs_ticket:{ticket_id}",
    replaces="handle_support_ticket action=update|comment|resolve|escalate",
)
async def update_ticket(
    call: Call,
    action: Annotated[
        Literal["update", "comment", "resolve", "escalate"],
        Field(description="What to do."),
    ],
    ticket_id: TicketId,
    body: Annotated[str | None, Text("Comment (needed for comment).", max_length=20_000)] = None,
    subject: Annotated[str | None, Text("Subject (escalate: its title).", max_length=300)] = None,
    priority: Annotated[Priority | None, Field(description="Priority (escalate: severity).")] = None,
    status: Annotated[TicketStatus | None, Field(description="New status.")] = None,
    assignee: Agent = None,
    tags: Tags = None,
    public: Annotated[bool, Field(description="Comment is public.")] = True,
    from_agent: Annotated[bool, Field(description="Comment by an agent, not the customer.")] = True,
    author: Annotated[str | None, Text("Comment author (default you).")] = None,
    csat: Annotated[int | None, Field(ge=1, le=5, description="CSAT 1–5."), WholeNumber] = None,
) -> TicketResult:
    """Edit, comment on, resolve or escalate (with an SLA due time) a ticket; mirrored to Zendesk."""
    change = TicketChange(
        action,
        ticket_id=ticket_id,
        subject=subject,
        body=body,
        priority=priority,
        status=status,
        assignee=assignee,
        tags=tags,
        public=public,
        from_agent=from_agent,
        author=author,
        csat=csat,
    )
    return await zendesk_sync.apply_mirrored(call, change)
