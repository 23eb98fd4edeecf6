"""CS toolset `communication`: newsletters — a weekly or monthly issue to a saved segment, each
issue sent once, after a confirmed plan."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import Confirm, Cursor, Id, Limit, Text, require
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_cs.services import email_send, newsletters
from revops_cs.toolsets import communication as toolset

NewsletterId = Annotated[int | None, Id("newsletter", see="list_newsletters", optional="delete only")]


@toolset.tool(tier="read", title="List newsletters", replaces="automate_newsletters action=list")
def list_newsletters(call: Call, limit: Limit = 50, cursor: Cursor = None) -> Page[newsletters.NewsletterOut]:
    """Live newsletters with their segment, cadence and next due date, oldest first."""
    return newsletters.page(call.db, call.tenant, limit=limit, cursor=cursor)


@toolset.tool(tier="write", idempotent=False, title="Create or delete a newsletter")
def automate_newsletters(
    call: Call,
    action: Annotated[Literal["create", "delete"], Field(description="create, or delete newsletter_id.")],
    newsletter_id: NewsletterId = None,
    name: Annotated[str | None, Text("create: name.", max_length=100)] = None,
    segment_rule: Annotated[
        str | None, Text("create: saved segment; omit for all clients.", max_length=100)
    ] = None,
    schedule: Annotated[newsletters.Schedule | None, Field(description="create: cadence.")] = None,
    start: Annotated[date | None, Field(description="create: first run (default today).")] = None,
    subject: Annotated[str | None, Text("create: subject template.", max_length=300)] = None,
    body: Annotated[str | None, Text("create: body template ({{variables}}).", max_length=20_000)] = None,
) -> newsletters.NewsletterOut:
    """Create a weekly/monthly newsletter to a saved segment, or delete one."""
    if action == "delete":
        letter = newsletters.delete(call.db, require(newsletter_id, "newsletter_id", when="action=delete"))
    else:
        when = "action=create"
        letter = newsletters.create(
            call.db,
            call.tenant,
            call.actor,
            name=require(name, "name", when=when),
            segment_rule=segment_rule,
            schedule=require(schedule, "schedule", when=when),
            start=start,
            subject=require(subject, "subject", when=when),
            body=require(body, "body", when=when),
        )
    call.target = f"cs_newsletter:{letter.id}"
    return newsletters.NewsletterOut.model_validate(letter)


@toolset.tool(
    tier="destructive",
    idempotent=False,
    open_world=True,
    title="Send due newsletters",
    replaces="automate_newsletters action=run_due",
)
def send_due_newsletters(call: Call, confirm: Confirm = None) -> Planned[newsletters.NewsletterRun]:
    """Send each due newsletter issue once to its segment: plan first, then confirm."""
    today = datetime.now(UTC).date()
    # Rendered in a read transaction of its own: the credential (an audited vault write) comes next.
    with call.runtime.db.session() as session:
        issues = newsletters.due(session, call.tenant, today)
    if not issues:
        call.no_change()
        return email_send.finished(newsletters.NewsletterRun(newsletters=[], recipients=[]))
    creds = email_send.credentials(call.runtime) if any(i.emails for i in issues) else None
    return plan_or_run(
        call,
        confirm=confirm,
        preview=newsletters.preview(issues),
        fingerprint=newsletters.fingerprint(issues),
        run=lambda: newsletters.send_issues(call, creds, issues),
    )
