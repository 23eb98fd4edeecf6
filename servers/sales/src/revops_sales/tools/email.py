"""E-mail tools: Gmail send/reply/drafts, logged messages and simple sequences.

Every send goes through `services.gmail_send` (token first, then the checked message, one POST,
an honest stored outcome). More than one recipient — or more than one due sequence step — needs a
confirmed plan.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from revops_core.guards import PlanPreview
from revops_core.paging import Page
from revops_core.params import Confirm, Cursor, Id, Ids, IdValue, Limit, Text, require
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_sales.services import email_log, gmail_send, sequences
from revops_sales.toolsets import email as toolset
from revops_sales.vendors import google_auth

OptContactIds = Annotated[list[IdValue] | None, Ids("contact", max_items=50, see="search_contacts")]
OptDeal = Annotated[int | None, Id("deal", optional="log against it")]
SequenceId = Annotated[int | None, Id("sequence", optional="enrol; run_due: only this one")]
Subject = Annotated[str | None, Text("Subject (a reply defaults to Re: …).", max_length=300)]
Body = Annotated[str, Text("Plain-text body.", max_length=20_000)]


def _done(result: Any) -> Planned[Any]:
    return Planned[Any](status="done", plan_id=None, plan=None, result=result)


@toolset.tool(tier="write", idempotent=False, open_world=True, title="Send or draft an e-mail")
def send_email(
    call: Call,
    action: Annotated[Literal["send", "draft"], Field(description="send now, or create a Gmail draft.")],
    body: Body,
    contact_ids: OptContactIds = None,
    subject: Subject = None,
    reply_to_message_id: Annotated[
        int | None, Id("e-mail", see="list_emails", optional="reply in its thread")
    ] = None,
    deal_id: OptDeal = None,
    confirm: Confirm = None,
) -> Planned[gmail_send.SendResult]:
    """E-mail contacts via Gmail, or reply in a logged thread; >1 recipient: plan, then confirm."""
    with call.reading() as read:
        if reply_to_message_id is not None:
            item = gmail_send.reply(
                read,
                call.tenant,
                message_id=reply_to_message_id,
                contact_ids=contact_ids,
                subject=subject,
                body=body,
            )
        else:
            item = gmail_send.new_message(
                read,
                call.tenant,
                contact_ids=require(contact_ids, "contact_ids", when="a new e-mail"),
                subject=require(subject, "subject", when="a new e-mail"),
                body=body,
                deal_id=deal_id,
            )
    token = call.run_async(google_auth.access_token, call)

    def run() -> gmail_send.SendResult:
        (done,) = gmail_send.deliver(call, token, [item], draft=action == "draft")
        if done.row is not None:
            call.target = f"sales_email_message:{done.row.id}"
        return done.result()

    if action == "draft" or len(item.to) == 1:
        return _done(run())
    return plan_or_run(
        call,
        confirm=confirm,
        preview=PlanPreview(
            summary=f"Send '{item.subject}' to {len(item.to)} recipients via Gmail.",
            affected_count=len(item.to),
            sample=[{"email": e} for e in item.to[:10]],
            reversible=False,
        ),
        fingerprint={"to": sorted(item.to), "key": item.key},
        run=run,
    )


@toolset.tool(tier="write", idempotent=False, title="Log an e-mail")
def log_email(
    call: Call,
    direction: Annotated[
        Literal["received", "sent", "bounced"], Field(description="Direction, or a bounce.")
    ],
    contact_id: Annotated[int, Id("contact", see="search_contacts")],
    subject: Annotated[str, Text("Subject.", max_length=300)],
    occurred_at: Annotated[AwareDatetime, Field(description="When, with time zone.")],
    thread_id: Annotated[str | None, Text("Gmail thread id.", max_length=100)] = None,
    rfc_message_id: Annotated[str | None, Text("Message-ID header.", max_length=300)] = None,
    deal_id: OptDeal = None,
) -> email_log.LoggedOut:
    """Log a message against a contact; a reply stops, a bounce pauses, the sequences in its thread."""
    logged = email_log.log(
        call.db,
        call.tenant,
        call.actor,
        direction=direction,
        contact_id=contact_id,
        subject=subject,
        occurred_at=occurred_at.astimezone(UTC),
        thread_id=thread_id,
        rfc_message_id=rfc_message_id,
        deal_id=deal_id,
    )
    call.target = f"sales_email_message:{logged.message.id}"
    return logged


@toolset.tool(tier="read", title="List e-mails")
def list_emails(
    call: Call,
    status: Annotated[
        Literal["sent", "unknown", "draft", "received", "bounced"] | None,
        Field(description="Only this status."),
    ] = None,
    contact_id: Annotated[int | None, Id("contact", optional="any")] = None,
    thread_id: Annotated[str | None, Text("Gmail thread id.", max_length=100)] = None,
    sequence_id: Annotated[int | None, Id("sequence", optional="any")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[gmail_send.MessageOut]:
    """Stored e-mails (sent, drafts, logged), newest first."""
    return email_log.page(
        call.db,
        call.tenant,
        status=status,
        contact_id=contact_id,
        thread_id=thread_id,
        sequence_id=sequence_id,
        limit=limit,
        cursor=cursor,
    )


@toolset.tool(tier="write", idempotent=False, open_world=True, title="Manage e-mail sequences")
def manage_sequence(
    call: Call,
    action: Annotated[
        Literal["create", "enrol", "run_due"],
        Field(description="What to do."),
    ],
    sequence_id: SequenceId = None,
    name: Annotated[str | None, Text("Name (create).")] = None,
    steps: Annotated[
        list[sequences.StepIn] | None,
        Field(min_length=1, max_length=10, description="Steps in order (create)."),
    ] = None,
    contact_ids: OptContactIds = None,
    deal_id: OptDeal = None,
    confirm: Confirm = None,
) -> Planned[sequences.SequenceOut | sequences.EnrolledOut | sequences.RunOut]:
    """Create a sequence, enrol contacts, or send every due step (>1 due: plan, then confirm)."""
    if action == "create":
        created = sequences.create(
            call.db,
            call.tenant,
            call.actor,
            name=require(name, "name", when="action=create"),
            steps=require(steps, "steps", when="action=create"),
        )
        call.target = f"sales_sequence:{created.id}"
        return _done(created)
    if action == "enrol":
        enrolled = sequences.enrol(
            call.db,
            call.tenant,
            sequence_id=require(sequence_id, "sequence_id", when="action=enrol"),
            contact_ids=require(contact_ids, "contact_ids", when="action=enrol"),
            deal_id=deal_id,
        )
        call.target = f"sales_sequence:{enrolled.sequence.id}"
        return _done(enrolled)
    return _run_due(call, sequence_id, confirm)


def _run_due(call: Call, sequence_id: int | None, confirm: str | None) -> Planned[Any]:
    with call.reading() as read:
        found = sequences.due(read, call.tenant, sequence_id, lock=False)
        if not found:
            call.no_change()
            return _done(sequences.RunOut(results=[], enrollments=[], note="No step is due."))
        planned = sequences.outgoing(read, call.tenant, found)
    token = call.run_async(google_auth.access_token, call)

    def run() -> sequences.RunOut:
        sequences.stop_unreachable(call.db, call.tenant)
        # Re-read under the lock; send only what was checked (and, for more than one, planned) above.
        checked = {r.id or 0 for r in found}
        rows = sequences.due(call.db, call.tenant, sequence_id, lock=True, only=checked)
        items = sequences.outgoing(call.db, call.tenant, rows)
        done = gmail_send.deliver(call, token, items) if items else []
        sequences.advance(call.db, call.tenant, rows, done)
        unknown = sum(d.status == "unknown" for d in done)
        return sequences.RunOut(
            results=[d.result() for d in done],
            enrollments=sequences.enrollments(call.db, [r.id or 0 for r in rows]),
            note=f"{unknown} send(s) got no clear answer: held, not resent." if unknown else None,
        )

    if len(planned) == 1:
        return _done(run())
    return plan_or_run(
        call,
        confirm=confirm,
        preview=sequences.preview(found, planned),
        fingerprint=sorted([r.id, r.next_step] for r in found),
        run=run,
    )
