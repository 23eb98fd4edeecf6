"""CS toolset `communication`: personalised e-mail through SendGrid — preview, send, stats.

Sending goes through the one pipeline (`services.email_send`): the SendGrid credential is read
first (its own audited vault transaction), then rendering, the already-sent check, the sends and
the message rows share the call's one write transaction. One recipient is sent at once; more need
a confirmed plan.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import Confirm, Ids, IdValue, Text
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_cs.services import email_events, email_send
from revops_cs.services.email_templates import template_variables
from revops_cs.toolsets import communication as toolset

ClientIds = Annotated[list[IdValue], Ids("client", max_items=50, see="list_clients")]
ContactIds = Annotated[list[IdValue] | None, Ids("contact")]
Subject = Annotated[str, Text("Subject; {{variables}} as in body.", max_length=300)]
Body = Annotated[
    str,
    Text("Text; {{client_name}} {{first_name}} {{health_band}} {{renewal_date}} {{csm}}…", max_length=20_000),
]


@toolset.tool(tier="read", title="E-mail stats", replaces="send_personalized_email action=stats")
def get_email_stats(
    call: Call,
    client_ids: Annotated[list[IdValue] | None, Ids("client", max_items=50, see="list_clients")] = None,
    since: Annotated[date | None, Field(description="Only e-mails sent on or after this day.")] = None,
) -> email_events.EmailMetrics:
    """Sent, delivered, open, click, unsubscribe and complaint rates of stored e-mails."""
    return email_events.email_metrics(call.db, client_ids, since)


@toolset.tool(
    tier="read", title="Preview a personalised e-mail", replaces="send_personalized_email dry_run=true"
)
def preview_personalized_email(
    call: Call, client_ids: ClientIds, subject: Subject, body: Body, contact_ids: ContactIds = None
) -> email_send.EmailOut:
    """Render an e-mail for each contact (who would get it, who is skipped); sends nothing."""
    emails, skipped = email_send.prepare(call.db, client_ids, contact_ids, subject, body)
    emails, already = email_send.unsent(call.db, emails)
    first = emails[0] if emails else None
    return email_send.EmailOut(
        recipients=[o.recipient("preview") for o in emails] + skipped + already,
        subject=first.subject if first else None,
        body=first.body if first else None,
        note="Preview: nothing sent.",
    )


@toolset.tool(tier="destructive", idempotent=False, open_world=True, title="Send a personalised e-mail")
def send_personalized_email(
    call: Call,
    client_ids: ClientIds,
    subject: Subject,
    body: Body,
    contact_ids: ContactIds = None,
    confirm: Confirm = None,
) -> Planned[email_send.EmailOut]:
    """E-mail client contacts via SendGrid ({{vars}} from stored data); >1 recipient: plan, then confirm."""
    template_variables(subject, body)  # unknown variables fail before the vault is read
    creds = email_send.credentials(call.runtime)
    emails, skipped = email_send.prepare(call.db, client_ids, contact_ids, subject, body, lock=True)
    emails, already = email_send.unsent(call.db, emails)
    skipped += already
    call.target = f"cs_client:{client_ids[0]}" if len(set(client_ids)) == 1 else "cs_client:*"
    if not emails:
        call.no_change()
        return email_send.finished(
            email_send.EmailOut(recipients=skipped, subject=None, body=None, note="Nothing to send.")
        )
    first = emails[0]

    def send() -> email_send.EmailOut:
        sent = email_send.send(call, creds, emails, source="manual")
        note = f"{sent.unknown} send(s) timed out: outcome unknown, not resent." if sent.unknown else None
        return email_send.EmailOut(
            recipients=sent.recipients + skipped, subject=first.subject, body=first.body, note=note
        )

    if len(emails) == 1:
        return email_send.finished(send())
    return plan_or_run(
        call,
        confirm=confirm,
        preview=email_send.preview(emails, skipped),
        fingerprint=email_send.fingerprint(emails),
        run=send,
    )
