"""CS toolset `communication`: personalised email through SendGrid, its event webhook, Intercom, Mixpanel.

Send path (send_personalized_email): check the SendGrid credential (own audited vault transaction) →
resolve real contacts, render, dedupe and plan/confirm in the call's transaction → POST each email once
→ store one row per email SendGrid accepted (`accepted`) or may have accepted (`unknown`: timed out).

Idempotency: every email has a `dedupe_key` = hash(recipient, rendered subject, rendered body). A repeat
call finds the earlier row — whatever its status — and reports the recipient as `already_sent` instead
of sending again. So a retry after a timeout never double-sends; an `unknown` row is never resent
automatically (check SendGrid's activity feed, then change the text to send deliberately again).
If every attempt failed outright (401, 500, 400…) the error is raised and nothing is stored.

Locking: the dedupe check, the vendor calls and the inserts run in the call's one write transaction, so
two identical concurrent calls serialise (SQLite: the write lock; PostgreSQL: row locks on the
contacts) and the second finds the first's rows. The price: on SQLite other writers wait while a
send is in flight (bounded by the HTTP deadline).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from revops_core.errors import (
    CircuitOpen,
    ConfigurationError,
    IntegrationAuth,
    NotFound,
    RevOpsError,
    ValidationFailed,
)
from revops_core.guards import PlanPreview, require_confirmation
from revops_core.models import CoreContact
from revops_core.money import money
from revops_core.server import Call
from revops_cs.analytics.health import BAND_NAMES
from revops_cs.common import check_range, get_client, require_all, resolve_as_of, start_of_day
from revops_cs.models.clients import CsClient
from revops_cs.models.communication import (
    CsCommFiring,
    CsCommRule,
    CsEmailEvent,
    CsEmailMessage,
    CsNewsletter,
    CsNewsletterIssue,
)
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsHealthSnapshot, CsSegmentRule
from revops_cs.models.vendors import CsExternalRef
from revops_cs.output import MAX_ID, Out, arg
from revops_cs.services import segments
from revops_cs.services.health import latest_snapshots
from revops_cs.toolsets import communication as toolset
from revops_cs.vendors import intercom, mixpanel, sendgrid

ClientIds = Annotated[
    list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None,
    arg("Clients.", max_length=50),
]
Confirm = Annotated[str | None, arg("plan_id to execute.", max_length=100)]

# --------------------------------------------------------------------------- templates

_VAR = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
VARIABLES = (
    "client_name",
    "first_name",
    "last_name",
    "contact_name",
    "csm",
    "tier",
    "plan",
    "arr",
    "renewal_date",
    "health_band",
    "health_score",
)


def template_variables(*texts: str) -> list[str]:
    """The variables a template uses; `validation_error` naming the first unknown one."""
    found: list[str] = []
    for text in texts:
        for name in _VAR.findall(text):
            if name not in VARIABLES:
                raise ValidationFailed(
                    f"Unknown template variable {{{{{name}}}}}.",
                    field=name,
                    hint="Use only: " + ", ".join(VARIABLES) + ".",
                )
            if name not in found:
                found.append(name)
    return found


def variable_values(client: CsClient, contact: CoreContact, band: str | None, score: float | None) -> dict:
    """Each variable's value from stored data; None where the data is missing."""
    names = [contact.first_name, contact.last_name]
    return {
        "client_name": client.name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "contact_name": " ".join(n for n in names if n) or None,
        "csm": client.owner,
        "tier": client.tier,
        "plan": client.plan,
        "arr": money(client.arr_minor, client.currency).display(),
        "renewal_date": client.renewal_date.isoformat() if client.renewal_date else None,
        "health_band": band,
        "health_score": None if score is None else f"{score:.0f}",
    }


def render(text: str, values: dict[str, Any], *, client: CsClient, contact: CoreContact) -> str:
    """Fill `{{var}}`s; a variable whose data is missing is a `validation_error` naming it and the record."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None:
            raise ValidationFailed(
                f"{{{{{name}}}}} has no value for client {client.id} / contact {contact.email} "
                "(the data is not stored).",
                field=name,
                hint="Fill in the missing data (or compute health first), or drop the variable.",
            )
        return str(value)

    return _VAR.sub(fill, text)


def dedupe_key(email: str, subject: str, body: str) -> str:
    return hashlib.sha256("\x1f".join((email.lower(), subject, body)).encode()).hexdigest()


# --------------------------------------------------------------------------- results


class Recipient(Out):
    client_id: int = Field(description="Client.")
    contact_id: int = Field(description="Contact.")
    email: str = Field(description="Address.")
    status: str = Field(
        description="accepted | unknown (timed out; not resent) | failed | already_sent | unsubscribed "
        "| preview | not_attempted."
    )
    message_id: int | None = Field(description="Stored message row.")
    error: str | None = Field(description="Error code when failed.")


class EmailMetrics(Out):
    sent: int = Field(description="Emails SendGrid accepted (incl. unknown outcome).")
    bounces: int = Field(description="Bounced or dropped.")
    delivered: int = Field(description="sent − bounces.")
    unique_opens: int = Field(description="Emails opened at least once.")
    unique_clicks: int = Field(description="Emails clicked at least once.")
    unsubscribes: int = Field(description="Unsubscribes.")
    complaints: int = Field(description="Spam reports.")
    open_rate: float | None = Field(description="unique_opens/delivered; null if none delivered.")
    ctr: float | None = Field(description="unique_clicks/delivered.")
    ctor: float | None = Field(description="unique_clicks/unique_opens.")
    unsubscribe_rate: float | None = Field(description="unsubscribes/delivered.")
    complaint_rate: float | None = Field(description="complaints/delivered.")


class EmailResult(Out):
    action: str = Field(description="Action done.")
    done: bool = Field(description="False when only a plan or preview was returned.")
    recipients: list[Recipient] = Field(description="One row per contact considered.")
    subject: str | None = Field(description="Rendered subject (first recipient).")
    body: str | None = Field(description="Rendered body (first recipient).")
    metrics: EmailMetrics | None = Field(description="stats: email metrics.")
    plan: dict[str, Any] | None = Field(description="Plan to confirm (more than one recipient).")
    note: str | None = Field(description="What happened and why.")


def _result(action: str, **fields: Any) -> EmailResult:
    base: dict[str, Any] = {
        "done": True,
        "recipients": [],
        "subject": None,
        "body": None,
        "metrics": None,
        "plan": None,
        "note": None,
    }
    return EmailResult(action=action, **(base | fields))


# --------------------------------------------------------------------------- sending


@dataclass
class Outgoing:
    """One rendered email to one contact."""

    client_id: int
    contact_id: int
    email: str
    name: str | None
    subject: str
    body: str
    key: str


def live_contacts(
    session: Session, client: CsClient, contact_ids: list[int] | None, *, lock: bool = False
) -> list[CoreContact]:
    """The client's (non-deleted) contacts, or the named ones — each must belong to the client.

    `lock` (sending): PostgreSQL row locks make a concurrent identical send wait for this one's commit,
    then find its message row (already_sent). SQLite's write transaction serialises sends anyway."""
    query = select(CoreContact).where(
        CoreContact.company_id == client.company_id, col(CoreContact.deleted_at).is_(None)
    )
    if lock:
        query = query.with_for_update()
    contacts = list(session.exec(query.order_by(col(CoreContact.id))))
    if contact_ids is None:
        return contacts
    return [c for c in contacts if c.id in contact_ids]


def prepare_emails(
    session: Session,
    client_ids: list[int],
    contact_ids: list[int] | None,
    subject: str,
    body: str,
    *,
    lock: bool = False,
) -> tuple[list[Outgoing], list[Recipient]]:
    """Render for every real contact; unsubscribed contacts are listed, not rendered."""
    used = template_variables(subject, body)
    clients = [get_client(session, cid) for cid in dict.fromkeys(client_ids)]
    snaps = (
        latest_snapshots(session, [c.id or 0 for c in clients])
        if {"health_band", "health_score"} & set(used)
        else {}
    )
    outgoing: list[Outgoing] = []
    skipped: list[Recipient] = []
    matched: set[int] = set()
    for client in clients:
        for contact in live_contacts(session, client, contact_ids, lock=lock):
            matched.add(contact.id or 0)
            if contact.unsubscribed_at is not None:
                skipped.append(_recipient(client.id, contact, "unsubscribed"))
                continue
            snap = snaps.get(client.id or 0)
            values = variable_values(
                client, contact, snap.band if snap else None, snap.score if snap else None
            )
            subj = render(subject, values, client=client, contact=contact)
            text = render(body, values, client=client, contact=contact)
            name = values["contact_name"]
            outgoing.append(Outgoing(client.id or 0, contact.id or 0, contact.email, name, subj, text, ""))
    missing = sorted(set(contact_ids or ()) - matched)
    if missing:
        raise ValidationFailed(
            f"Contact(s) {missing[:10]} do not belong to the given client(s) (or are deleted).",
            field="contact_ids",
            hint="Use contact ids of the clients' companies; nothing was sent.",
        )
    if not outgoing and not skipped:
        raise ValidationFailed(
            "The client(s) have no contacts to email.", field="client_ids", hint="Add contacts first."
        )
    for o in outgoing:
        o.key = dedupe_key(o.email, o.subject, o.body)
    return outgoing, skipped


def _recipient(client_id: int | None, contact: CoreContact, status: str) -> Recipient:
    return Recipient(
        client_id=client_id or 0,
        contact_id=contact.id or 0,
        email=contact.email,
        status=status,
        message_id=None,
        error=None,
    )


def _out_recipient(
    o: Outgoing, status: str, message_id: int | None = None, error: str | None = None
) -> Recipient:
    return Recipient(
        client_id=o.client_id,
        contact_id=o.contact_id,
        email=o.email,
        status=status,
        message_id=message_id,
        error=error,
    )


def existing_keys(session: Session, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = session.exec(
        select(CsEmailMessage.dedupe_key, CsEmailMessage.id).where(col(CsEmailMessage.dedupe_key).in_(keys))
    )
    return {k: i or 0 for k, i in rows}


@dataclass
class SendOutcome:
    email: Outgoing
    status: Literal["accepted", "unknown", "failed", "not_attempted"]
    provider_id: str | None = None
    error: RevOpsError | None = None


async def deliver(
    call: Call, creds: sendgrid.SendgridCredentials, emails: list[Outgoing]
) -> list[SendOutcome]:
    """POST each email once. Stops early on errors that would repeat for every email (auth, breaker)."""
    outcomes: list[SendOutcome] = []
    options = call.runtime.state.get("sendgrid_options", {})
    async with sendgrid.SendgridClient(creds, call.settings, **options) as client:
        for i, o in enumerate(emails):
            body = sendgrid.mail_body(
                sender=creds.from_email,
                to_email=o.email,
                to_name=o.name,
                subject=o.subject,
                text=o.body,
                message_ref=o.key,
            )
            try:
                outcomes.append(SendOutcome(o, "accepted", await client.send(body)))
            except RevOpsError as err:
                outcomes.append(
                    SendOutcome(o, "unknown" if err.outcome == "unknown" else "failed", error=err)
                )
                if isinstance(err, IntegrationAuth | CircuitOpen | ConfigurationError):
                    outcomes.extend(SendOutcome(rest, "not_attempted") for rest in emails[i + 1 :])
                    break
            if call.ctx is not None and len(emails) > 1:
                await call.ctx.report_progress(i + 1, len(emails), f"{i + 1} of {len(emails)} sent")
    return outcomes


def store_outcomes(call: Call, outcomes: list[SendOutcome], source: str) -> list[Recipient]:
    """One message row per email SendGrid accepted or may have accepted; failures stay row-less."""
    out: list[Recipient] = []
    for oc in outcomes:
        o = oc.email
        if oc.status in ("accepted", "unknown"):
            row = CsEmailMessage(
                tenant=call.tenant,
                client_id=o.client_id,
                contact_id=o.contact_id,
                email=o.email,
                subject=o.subject,
                body=o.body,
                source=source,
                dedupe_key=o.key,
                status=oc.status,
                provider_message_id=oc.provider_id,
            )
            call.db.add(row)
            call.db.flush()
            out.append(_out_recipient(o, oc.status, row.id))
        else:
            out.append(_out_recipient(o, oc.status, error=oc.error.code if oc.error else None))
    return out


def raise_if_nothing_sent(outcomes: list[SendOutcome]) -> None:
    """When no email was (or may have been) accepted, the first error: the call stores nothing."""
    if outcomes and all(oc.status in ("failed", "not_attempted") for oc in outcomes):
        raise next(oc.error for oc in outcomes if oc.error is not None)


async def send_emails(
    call: Call,
    creds: sendgrid.SendgridCredentials,
    emails: list[Outgoing],
    *,
    source: str,
) -> list[Recipient]:
    """Send and store. If nothing was (or may have been) accepted, raise the first error: nothing stored."""
    outcomes = await deliver(call, creds, emails)
    raise_if_nothing_sent(outcomes)
    recipients = await call.in_thread(partial(store_outcomes, call, outcomes, source))
    call.audit_details["sent"] = sum(r.status == "accepted" for r in recipients)
    call.audit_details["unknown"] = sum(r.status == "unknown" for r in recipients)
    return recipients


def _plan_or_preview(
    call: Call,
    client_ids: list[int],
    contact_ids: list[int] | None,
    subject: str,
    body: str,
    dry_run: bool,
    confirm: str | None,
) -> tuple[list[Outgoing], list[Recipient], EmailResult | None]:
    """Render, drop already-sent emails, and return a preview or plan where the call must stop."""
    # The dedupe check, the sends and the inserts share the call's transaction (see live_contacts).
    emails, skipped = prepare_emails(call.db, client_ids, contact_ids, subject, body, lock=not dry_run)
    sent = existing_keys(call.db, [o.key for o in emails])
    skipped += [_out_recipient(o, "already_sent", sent[o.key]) for o in emails if o.key in sent]
    emails = [o for o in emails if o.key not in sent]
    first = emails[0] if emails else None
    shown = {"subject": first.subject if first else None, "body": first.body if first else None}
    if dry_run:
        call.no_change()
        preview = [_out_recipient(o, "preview") for o in emails]
        return (
            [],
            [],
            _result("send", done=False, recipients=preview + skipped, note="Dry run: nothing sent.", **shown),
        )
    if len(emails) > 1:
        preview = PlanPreview(
            summary=f"Send '{first.subject if first else ''}' to {len(emails)} contact(s) via SendGrid.",
            affected_count=len(emails),
            sample=[{"email": o.email, "client_id": o.client_id} for o in emails[:10]],
            reversible=False,
            notes=[f"{len(skipped)} contact(s) skipped (unsubscribed or already sent)."] if skipped else [],
        )
        fingerprint = sorted([o.contact_id, o.key] for o in emails)
        plan = require_confirmation(call, confirm=confirm, preview=preview, fingerprint=fingerprint)
        if plan is not None:
            return (
                [],
                [],
                _result("send", done=False, recipients=skipped, plan=plan.model_dump(mode="json"), **shown),
            )
    if not emails:
        call.no_change()
        return [], [], _result("send", done=False, recipients=skipped, note="Nothing to send.", **shown)
    return emails, skipped, None


# --------------------------------------------------------------------------- metrics


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def email_metrics(session: Session, client_ids: list[int] | None, since: date | None) -> EmailMetrics:
    """REFERENCE.md email metrics over stored messages (one row per email sent)."""
    m = CsEmailMessage
    query = select(
        func.count(),
        func.count(m.bounced_at),
        func.count(m.first_open_at),
        func.count(m.first_click_at),
        func.count(m.unsubscribed_at),
        func.count(m.spam_reported_at),
    ).select_from(m)
    if client_ids:
        query = query.where(col(m.client_id).in_(client_ids))
    if since is not None:
        query = query.where(m.sent_at >= start_of_day(since))
    sent, bounces, opens, clicks, unsubs, spam = session.exec(query).one()
    delivered = sent - bounces
    return EmailMetrics(
        sent=sent,
        bounces=bounces,
        delivered=delivered,
        unique_opens=opens,
        unique_clicks=clicks,
        unsubscribes=unsubs,
        complaints=spam,
        open_rate=_rate(opens, delivered),
        ctr=_rate(clicks, delivered),
        ctor=_rate(clicks, opens),
        unsubscribe_rate=_rate(unsubs, delivered),
        complaint_rate=_rate(spam, delivered),
    )


# --------------------------------------------------------------------------- tool


@toolset.tool(tier="destructive", idempotent=False, open_world=True)
async def send_personalized_email(
    call: Call,
    action: Annotated[Literal["send", "stats"], arg("stats: email metrics.")] = "send",
    client_ids: ClientIds = None,
    contact_ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None,
        arg("Only these contacts.", max_length=200),
    ] = None,
    subject: Annotated[str | None, arg("Subject.", min_length=1, max_length=300)] = None,
    body: Annotated[
        str | None,
        arg(
            "Text; {{client_name}} {{first_name}} {{health_band}} {{renewal_date}} {{csm}}…",
            min_length=1,
            max_length=20_000,
        ),
    ] = None,
    since: Annotated[date | None, arg("stats: sent since.")] = None,
    dry_run: Annotated[bool, arg("Render only.")] = False,
    confirm: Confirm = None,
) -> EmailResult:
    """Email client contacts via SendGrid ({{vars}} from stored data; >1 recipient: plan), or stats."""
    if action == "stats":
        call.no_change()
        metrics = await call.in_thread(partial(email_metrics, call.db, client_ids, since))
        return _result("stats", metrics=metrics)
    if not client_ids:
        raise ValidationFailed(
            "send needs client_ids.", field="client_ids", hint="Name the client(s) to email."
        )
    if subject is None or body is None:
        raise ValidationFailed("send needs subject and body.", field="subject" if subject is None else "body")
    template_variables(subject, body)  # unknown variables fail before anything else
    creds = None if dry_run else await call.in_thread(partial(sendgrid.require_credentials, call.runtime))
    emails, skipped, stop = await call.in_thread(
        partial(_plan_or_preview, call, client_ids, contact_ids, subject, body, dry_run, confirm)
    )
    if stop is not None:
        return stop
    assert creds is not None
    recipients = await send_emails(call, creds, emails, source="manual")
    call.target = f"cs_client:{client_ids[0]}" if len(client_ids) == 1 else "cs_client:*"
    first = emails[0]
    unknown = sum(r.status == "unknown" for r in recipients)
    note = f"{unknown} send(s) timed out: outcome unknown, not resent." if unknown else None
    return _result("send", recipients=recipients + skipped, subject=first.subject, body=first.body, note=note)


# --------------------------------------------------------------------------- SendGrid event webhook


class IngestResult(Out):
    received: int = Field(description="Events in the payload.")
    stored: int = Field(description="New events stored (ignored types included).")
    duplicates: int = Field(description="Skipped: sg_event_id already stored.")
    unmatched: int = Field(description="Stored without a matching sent message.")
    ignored: dict[str, int] = Field(description="Event types we do not track → count.")
    messages_updated: int = Field(description="Messages whose status/metrics changed.")
    contacts_unsubscribed: int = Field(description="Contacts newly marked unsubscribed.")


def _event_field(i: int, raw: dict[str, Any], name: str, kind: type) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise ValidationFailed(
            f"events[{i}].{name} is missing or not a {kind.__name__}.",
            field=f"events[{i}].{name}",
            hint="Pass SendGrid's event-webhook JSON array unchanged; nothing was stored.",
        )
    return value


def _find_message(session: Session, raw: dict[str, Any]) -> CsEmailMessage | None:
    """By our `revops_ref` custom arg, else by SendGrid's message id (`<X-Message-Id>.<filter…>`)."""
    ref = raw.get("revops_ref")
    if isinstance(ref, str) and ref:
        found = session.exec(select(CsEmailMessage).where(CsEmailMessage.dedupe_key == ref)).first()
        if found is not None:
            return found
    sg_id = raw.get("sg_message_id")
    if isinstance(sg_id, str) and sg_id:
        prefix = sg_id.split(".", 1)[0]
        return session.exec(
            select(CsEmailMessage).where(CsEmailMessage.provider_message_id == prefix)
        ).first()
    return None


def apply_event(m: CsEmailMessage, event: str, when: datetime) -> None:
    """Fold one event into the message's status and counters (events may arrive out of order)."""
    if event == "delivered":
        m.delivered_at = m.delivered_at or when
        if m.status in ("accepted", "unknown", "deferred"):
            m.status = "delivered"
    elif event == "processed" and m.status == "unknown":
        m.status = "accepted"  # SendGrid has it after all
    elif event == "deferred" and m.status in ("accepted", "unknown"):
        m.status = "deferred"
    elif event in ("bounce", "dropped"):
        m.bounced_at = m.bounced_at or when
        m.status = "bounced" if event == "bounce" else "dropped"
    elif event == "open":
        m.opens += 1
        m.first_open_at = min(m.first_open_at, when) if m.first_open_at else when
    elif event == "click":
        m.clicks += 1
        m.first_click_at = min(m.first_click_at, when) if m.first_click_at else when
    elif event in ("unsubscribe", "group_unsubscribe"):
        m.unsubscribed_at = m.unsubscribed_at or when
    elif event == "spamreport":
        m.spam_reported_at = m.spam_reported_at or when


TRACKED_EVENTS = frozenset(
    {"processed", "deferred", "delivered", "open", "click", "bounce", "dropped", "spamreport"}
    | {"unsubscribe", "group_unsubscribe"}
)
OPT_OUT_EVENTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})


def ingest_events(call: Call, events: list[dict[str, Any]]) -> IngestResult:
    """Validate the whole payload first (nothing stored on a bad record), then apply new events once."""
    parsed = []
    for i, raw in enumerate(events):
        event = _event_field(i, raw, "event", str)
        sg_event_id = _event_field(i, raw, "sg_event_id", str)
        email = _event_field(i, raw, "email", str)
        stamp = _event_field(i, raw, "timestamp", int)
        if not 0 < stamp < 10**11:
            raise ValidationFailed(
                f"events[{i}].timestamp is not a Unix time in seconds.",
                field=f"events[{i}].timestamp",
                hint="Pass SendGrid's event-webhook JSON array unchanged; nothing was stored.",
            )
        parsed.append((raw, event, sg_event_id[:100], email, datetime.fromtimestamp(stamp, UTC)))
    session = call.db
    ids = [p[2] for p in parsed]
    seen = set(session.exec(select(CsEmailEvent.sg_event_id).where(col(CsEmailEvent.sg_event_id).in_(ids))))
    stored = duplicates = unmatched = unsubscribed = 0
    ignored: dict[str, int] = {}
    touched: set[int] = set()
    for raw, event, sg_event_id, email, when in parsed:
        if sg_event_id in seen:
            duplicates += 1
            continue
        seen.add(sg_event_id)
        # Untracked types are stored too, so a redelivery of them is also recognised as a duplicate.
        tracked = event in TRACKED_EVENTS
        if not tracked:
            ignored[event[:30]] = ignored.get(event[:30], 0) + 1
        message = _find_message(session, raw) if tracked else None
        if tracked and message is None:
            unmatched += 1
        elif message is not None:
            apply_event(message, event, when)
            session.add(message)
            touched.add(message.id or 0)
        url = raw.get("url") if isinstance(raw.get("url"), str) else None
        session.add(
            CsEmailEvent(
                sg_event_id=sg_event_id,
                message_id=message.id if message else None,
                event=event,
                email=email[:320],
                occurred_at=when,
                url=url[:2000] if url else None,
            )
        )
        stored += 1
        if event in OPT_OUT_EVENTS:
            unsubscribed += _unsubscribe(session, call.tenant, email, when)
    session.flush()
    call.target = "sendgrid:events"
    call.audit_details.update(stored=stored, duplicates=duplicates)
    return IngestResult(
        received=len(events),
        stored=stored,
        duplicates=duplicates,
        unmatched=unmatched,
        ignored=ignored,
        messages_updated=len(touched),
        contacts_unsubscribed=unsubscribed,
    )


def _unsubscribe(session: Session, tenant: str, email: str, when: datetime) -> int:
    """Mark the contact with this address unsubscribed (1 if it was subscribed until now)."""
    contact = session.exec(
        select(CoreContact).where(
            CoreContact.tenant == tenant, func.lower(CoreContact.email) == email.lower()
        )
    ).first()
    if contact is None or contact.unsubscribed_at is not None:
        return 0
    contact.unsubscribed_at = when
    session.add(contact)
    return 1


@toolset.tool(tier="write", idempotent=True)
def ingest_email_events(
    call: Call,
    events: Annotated[
        list[dict[str, Any]],
        arg(
            "The webhook JSON array.",
            min_length=1,
            max_length=5000,
        ),
    ],
) -> IngestResult:
    """Apply SendGrid webhook events (deduped) to messages; opt-outs unsubscribe the contact."""
    return ingest_events(call, events)


# --------------------------------------------------------------------------- Intercom


class IntercomItem(Out):
    local_id: int | None = Field(description="Contact or ticket id here.")
    intercom_id: str | None = Field(description="Id at Intercom.")
    status: str = Field(description="created | updated | tagged | noted | replied | imported | unmapped.")


class IntercomResult(Out):
    action: str = Field(description="Action done.")
    items: list[IntercomItem] = Field(description="One row per record touched.")
    unmapped: int = Field(description="import: conversations whose contact is not a known client contact.")


def _refs(session: Session, kind: str) -> dict[int, str]:
    rows = session.exec(
        select(CsExternalRef.local_id, CsExternalRef.external_id).where(
            CsExternalRef.vendor == "intercom", CsExternalRef.kind == kind
        )
    )
    return dict(rows.all())


def _intercom_targets(
    call: Call, client_id: int | None, contact_id: int | None
) -> tuple[list[CoreContact], dict[int, str]]:
    """The client's contacts (or the one named) and their known Intercom ids, read in a short transaction."""
    if client_id is None:
        raise ValidationFailed("This action needs client_id.", field="client_id")
    with call.runtime.db.session() as session:
        client = get_client(session, client_id)
        contacts = live_contacts(session, client, [contact_id] if contact_id else None)
        if not contacts:
            raise ValidationFailed(
                "No such contact for this client." if contact_id else "The client has no contacts.",
                field="contact_id" if contact_id else "client_id",
                hint="Use a contact of the client's company.",
            )
        return contacts, _refs(session, "contact")


def _save_refs(call: Call, pairs: list[tuple[int, str]]) -> None:
    known = _refs(call.db, "contact")
    for local_id, remote in pairs:
        if known.get(local_id) == remote:
            continue
        row = call.db.exec(
            select(CsExternalRef).where(
                CsExternalRef.vendor == "intercom",
                CsExternalRef.kind == "contact",
                CsExternalRef.local_id == local_id,
            )
        ).first() or CsExternalRef(vendor="intercom", kind="contact", local_id=local_id, external_id=remote)
        row.external_id = remote
        call.db.add(row)


async def _push_contacts(
    ic: intercom.IntercomClient, contacts: list[CoreContact], refs: dict[int, str], tag: str | None
) -> list[IntercomItem]:
    items = []
    for c in contacts:
        name = " ".join(n for n in (c.first_name, c.last_name) if n) or None
        remote_id = refs.get(c.id or 0)
        if remote_id is None:
            found = await ic.find_contact(c.email)
            remote_id = str(found["id"]) if found else None
        if remote_id is None:
            remote_id = str((await ic.create_contact(c.email, name, str(c.id)))["id"])
            status = "created"
        else:
            await ic.update_contact(remote_id, {"name": name} if name else {"email": c.email})
            status = "updated"
        if tag:
            await ic.tag_contact(remote_id, tag)
            status += "+tagged"
        items.append(IntercomItem(local_id=c.id, intercom_id=remote_id, status=status))
    return items


async def _resolve_remote(ic: intercom.IntercomClient, contact: CoreContact, refs: dict[int, str]) -> str:
    if contact.id in refs:
        return refs[contact.id or 0]
    found = await ic.find_contact(contact.email)
    if found is None:
        raise NotFound(
            f"{contact.email} is not an Intercom contact.",
            field="contact_id",
            hint="Run sync_intercom action=push_contacts for the client first.",
        )
    return str(found["id"])


def _store_conversations(call: Call, conversations: list[dict[str, Any]]) -> IntercomResult:
    """Upsert conversations as tickets (channel intercom) of the client whose contact started them."""
    session = call.db
    by_remote = {remote: local for local, remote in _refs(session, "contact").items()}
    items: list[IntercomItem] = []
    unmapped = 0
    for conv in conversations:
        conv_id = str(conv.get("id") or "")
        people = (
            ((conv.get("contacts") or {}).get("contacts") or [])
            if isinstance(conv.get("contacts"), dict)
            else []
        )
        local_contact = next(
            (by_remote[str(p.get("id"))] for p in people if str(p.get("id")) in by_remote), None
        )
        contact = session.get(CoreContact, local_contact) if local_contact else None
        client = (
            session.exec(
                select(CsClient).where(
                    CsClient.company_id == contact.company_id, col(CsClient.deleted_at).is_(None)
                )
            ).first()
            if contact and contact.company_id
            else None
        )
        if not conv_id or client is None:
            unmapped += 1
            continue
        source = conv.get("source") if isinstance(conv.get("source"), dict) else {}
        created = datetime.fromtimestamp(int(conv.get("created_at") or 0), UTC)
        updated = datetime.fromtimestamp(int(conv.get("updated_at") or conv.get("created_at") or 0), UTC)
        ticket = session.exec(
            select(CsTicket).where(CsTicket.external_source == "intercom", CsTicket.external_id == conv_id)
        ).first()
        status = "updated" if ticket else "imported"
        ticket = ticket or CsTicket(client_id=client.id or 0, external_source="intercom", external_id=conv_id)
        ticket.contact_id = contact.id if contact else None
        ticket.subject = str(conv.get("title") or source.get("subject") or "Intercom conversation")[:300]
        ticket.description = re.sub(r"<[^>]+>", "", str(source.get("body") or ""))
        ticket.status = "open" if conv.get("state") in ("open", "snoozed") else "solved"
        ticket.priority = "high" if conv.get("priority") == "priority" else "normal"
        ticket.channel, ticket.created_at, ticket.updated_at = "intercom", created, updated
        ticket.solved_at = updated if ticket.status == "solved" else None
        session.add(ticket)
        session.flush()
        items.append(IntercomItem(local_id=ticket.id, intercom_id=conv_id, status=status))
    call.target = "intercom:conversations"
    return IntercomResult(action="import_conversations", items=items, unmapped=unmapped)


@toolset.tool(tier="write", idempotent=False, open_world=True)
async def sync_intercom(
    call: Call,
    action: Annotated[
        Literal["push_contacts", "note", "reply", "import_conversations"],
        arg("What to do."),
    ],
    client_id: Annotated[int | None, arg("Client.", ge=1, le=MAX_ID)] = None,
    contact_id: Annotated[int | None, arg("One contact.", ge=1, le=MAX_ID)] = None,
    body: Annotated[str | None, arg("Note/reply text.", min_length=1, max_length=10_000)] = None,
    tag: Annotated[str | None, arg("Tag to add.", max_length=100)] = None,
    conversation_id: Annotated[str | None, arg("Conversation id.", pattern=r"^\d{1,30}$")] = None,
    max_pages: Annotated[int, arg("Pages of 50.", ge=1, le=50)] = 5,
) -> IntercomResult:
    """Push contacts to Intercom, add notes/replies there, or import conversations as tickets."""
    if action in ("note", "reply") and body is None:
        raise ValidationFailed(f"{action} needs body.", field="body")
    if action == "reply" and conversation_id is None:
        raise ValidationFailed("reply needs conversation_id.", field="conversation_id")
    creds = await call.in_thread(
        partial(intercom.require_credentials, call.runtime, need_admin=action in ("note", "reply"))
    )
    options = call.runtime.state.get("intercom_options", {})
    if action == "import_conversations":
        async with intercom.IntercomClient(creds, call.settings, **options) as ic:
            conversations = [c async for c in ic.conversations(max_pages=max_pages)]
        return await call.in_thread(partial(_store_conversations, call, conversations))
    if action == "reply":
        async with intercom.IntercomClient(creds, call.settings, **options) as ic:
            await ic.reply(str(conversation_id), str(body))
        call.target = f"intercom:conversation:{conversation_id}"
        return IntercomResult(
            action=action,
            items=[IntercomItem(local_id=None, intercom_id=conversation_id, status="replied")],
            unmapped=0,
        )
    contacts, refs = await call.in_thread(partial(_intercom_targets, call, client_id, contact_id))
    call.target = f"cs_client:{client_id}"
    async with intercom.IntercomClient(creds, call.settings, **options) as ic:
        if action == "push_contacts":
            items = await _push_contacts(ic, contacts, refs, tag)
        else:
            target = next((c for c in contacts if c.is_primary), contacts[0])
            remote = await _resolve_remote(ic, target, refs)
            note = await ic.create_note(remote, str(body))
            call.audit_details["note_id"] = str(note["id"])
            items = [IntercomItem(local_id=target.id, intercom_id=remote, status="noted")]
    pairs = [(i.local_id or 0, i.intercom_id or "") for i in items]
    await call.in_thread(partial(_save_refs, call, pairs))
    return IntercomResult(action=action, items=items, unmapped=0)


# --------------------------------------------------------------------------- Mixpanel


class MixpanelResult(Out):
    action: str = Field(description="Action done.")
    lines: int = Field(description="import: export lines read.")
    inserted: int = Field(description="import: usage events stored.")
    duplicates: int = Field(description="import: skipped, $insert_id already stored.")
    unmapped: dict[str, int] = Field(description="import: events not stored, by reason.")
    profiles_updated: int = Field(description="push_profiles: profiles Mixpanel accepted.")


def client_keys(session: Session) -> dict[str, int]:
    """Mixpanel client key → client id: `external_ids["mixpanel"]`, else the client id itself."""
    keys: dict[str, int] = {}
    for cid, ext in session.exec(
        select(CsClient.id, CsClient.external_ids).where(col(CsClient.deleted_at).is_(None))
    ):
        keys[str(cid)] = cid or 0
        try:
            mapped = json.loads(ext or "{}").get("mixpanel")
        except ValueError:
            mapped = None
        if mapped is not None:
            keys[str(mapped)] = cid or 0
    return keys


def store_mixpanel(call: Call, events: list[Any]) -> MixpanelResult:
    """Map exported events to clients and ingest them in the call's transaction (dedupe by $insert_id)."""
    from revops_cs.services.usage import UsageEventIn, ingest_usage_events

    keys = client_keys(call.db)
    unmapped: dict[str, int] = {}
    rows = []
    for e in events:
        reason = None
        if e.client_key is None:
            reason = "no client property"
        elif e.client_key not in keys:
            reason = "unknown client"
        elif not e.user_ref:
            reason = "no distinct_id"
        if reason:
            unmapped[reason] = unmapped.get(reason, 0) + 1
            continue
        rows.append(
            UsageEventIn(
                client_id=keys[e.client_key],
                user_ref=e.user_ref,
                event=e.event,
                feature=e.feature,
                occurred_at=e.occurred_at,
                external_id=e.insert_id,
            )
        )
    report = ingest_usage_events(call.db, rows, source="mixpanel")
    call.target = "mixpanel:export"
    call.audit_details.update(inserted=report.inserted, duplicates=report.duplicates)
    return MixpanelResult(
        action="import",
        lines=len(events),
        inserted=report.inserted,
        duplicates=report.duplicates,
        unmapped=unmapped,
        profiles_updated=0,
    )


def profile_updates(session: Session, client_ids: list[int] | None) -> list[tuple[str, dict[str, Any]]]:
    """`$set` properties per contact (distinct_id = email) from the client's stored data."""
    query = select(CsClient).where(col(CsClient.deleted_at).is_(None))
    if client_ids:
        query = query.where(col(CsClient.id).in_(client_ids))
    clients = list(session.exec(query.order_by(col(CsClient.id))))
    snaps = latest_snapshots(session, [c.id or 0 for c in clients])
    updates = []
    for client in clients:
        snap = snaps.get(client.id or 0)
        props = {
            "client_id": client.id,
            "client_name": client.name,
            "tier": client.tier,
            "stage": client.stage,
            "arr": money(client.arr_minor, client.currency).display(),
            "renewal_date": client.renewal_date.isoformat() if client.renewal_date else None,
            "health_band": snap.band if snap else None,
        }
        for contact in live_contacts(session, client, None):
            updates.append((contact.email, props))
    return updates


def _read_profiles(call: Call, client_ids: list[int] | None) -> list[tuple[str, dict[str, Any]]]:
    # A short read transaction of its own: no write lock is held while Mixpanel is called.
    with call.runtime.db.session() as session:
        return profile_updates(session, client_ids)


@toolset.tool(tier="write", idempotent=True, open_world=True)
async def import_mixpanel_usage(
    call: Call,
    from_date: Annotated[date | None, arg("First day.")] = None,
    to_date: Annotated[date | None, arg("Last day (≤92 days).")] = None,
    client_property: Annotated[str, arg("Property naming the client.", max_length=100)] = "client_id",
    action: Annotated[Literal["import", "push_profiles"], arg("What to do.")] = "import",
    client_ids: ClientIds = None,
) -> MixpanelResult:
    """Import Mixpanel events as usage (deduped; unmapped counted), or push client data to profiles."""
    options = call.runtime.state.get("mixpanel_options", {})
    if action == "push_profiles":
        creds = await call.in_thread(partial(mixpanel.require_credentials, call.runtime, need_token=True))
        updates = await call.in_thread(partial(_read_profiles, call, client_ids))
        async with mixpanel.MixpanelClient(creds, call.settings, **options) as mp:
            done = await mp.set_profiles(updates)
        call.target = "mixpanel:profiles"
        return MixpanelResult(
            action=action, lines=0, inserted=0, duplicates=0, unmapped={}, profiles_updated=done
        )
    if from_date is None or to_date is None:
        raise ValidationFailed(
            "import needs from_date and to_date.", field="from_date" if from_date is None else "to_date"
        )
    check_range(from_date, to_date, start_field="from_date", end_field="to_date")
    resolve_as_of(to_date)
    if (to_date - from_date).days > 92:
        raise ValidationFailed(
            "The range is longer than 92 days.", field="to_date", hint="Import in smaller ranges."
        )
    creds = await call.in_thread(partial(mixpanel.require_credentials, call.runtime))
    events = []
    async with mixpanel.MixpanelClient(creds, call.settings, **options) as mp:
        async for line in mp.export(from_date, to_date):
            events.append(mixpanel.parse_line(line, len(events) + 1, client_property))
            if call.ctx is not None and len(events) % 1000 == 0:
                await call.ctx.report_progress(len(events), None, f"{len(events)} events read")
    # Everything read is stored in one transaction: a broken stream above stores nothing.
    result = await call.in_thread(partial(store_mixpanel, call, events))
    if call.ctx is not None:
        await call.ctx.report_progress(len(events), len(events), f"{result.inserted} events stored")
    return result


# --------------------------------------------------------------------------- automations

Trigger = Literal["band_drop", "score_drop", "urgent_ticket"]


class RuleOut(Out):
    id: int = Field(description="Rule id.")
    name: str = Field(description="Name.")
    trigger: str = Field(description="Trigger.")
    threshold: float | None = Field(description="score_drop points.")
    subject: str = Field(description="Subject template.")
    primary_only: bool = Field(description="Email only the primary contact.")


class Firing(Out):
    rule_id: int = Field(description="Rule.")
    client_id: int = Field(description="Client.")
    occurrence: str = Field(description="What fired it: snapshot:<id> or ticket:<id>.")
    sent: int = Field(description="Emails accepted (or outcome unknown).")
    skipped: str | None = Field(description="Why nothing was sent.")


class AutomationResult(Out):
    action: str = Field(description="Action done.")
    rules: list[RuleOut] = Field(description="Rules (create/list).")
    fired: list[Firing] = Field(description="run: rule firings, each sent once.")


def _rule_out(r: CsCommRule) -> RuleOut:
    return RuleOut(
        id=r.id or 0,
        name=r.name,
        trigger=r.trigger,
        threshold=r.threshold,
        subject=r.subject,
        primary_only=r.primary_only,
    )


def _live_rules(session: Session, tenant: str) -> list[CsCommRule]:
    query = select(CsCommRule).where(CsCommRule.tenant == tenant, col(CsCommRule.deleted_at).is_(None))
    return list(session.exec(query.order_by(col(CsCommRule.id))))


def _last_two(session: Session, client_ids: list[int]) -> dict[int, list[CsHealthSnapshot]]:
    out: dict[int, list[CsHealthSnapshot]] = {}
    query = select(CsHealthSnapshot).where(col(CsHealthSnapshot.client_id).in_(client_ids))
    order = (
        col(CsHealthSnapshot.client_id),
        col(CsHealthSnapshot.as_of).desc(),
        col(CsHealthSnapshot.id).desc(),
    )
    for snap in session.exec(query.order_by(*order)):
        pair = out.setdefault(snap.client_id, [])
        if len(pair) < 2:
            pair.append(snap)
    return out


def occurrences(session: Session, rule: CsCommRule, clients: list[CsClient]) -> list[tuple[int, str]]:
    """(client id, occurrence) pairs where the rule's trigger holds in the stored data."""
    ids = [c.id or 0 for c in clients]
    if rule.trigger == "urgent_ticket":
        tickets = session.exec(
            select(CsTicket.id, CsTicket.client_id).where(
                CsTicket.priority == "urgent",
                col(CsTicket.client_id).in_(ids),
                CsTicket.created_at >= rule.created_at,  # a new rule does not mail about old tickets
            )
        )
        return [(cid, f"ticket:{tid}") for tid, cid in tickets]
    found = []
    for cid, pair in _last_two(session, ids).items():
        if len(pair) < 2:
            continue
        latest, previous = pair
        if rule.trigger == "band_drop":
            fired = _band_rank(latest.band) > _band_rank(previous.band)
        else:
            fired = previous.score - latest.score >= (rule.threshold or 0)
        if fired:
            found.append((cid, f"snapshot:{latest.id}"))
    return found


def _band_rank(band: str) -> int:
    return BAND_NAMES.index(band) if band in BAND_NAMES else -1


@dataclass
class PendingFiring:
    rule_id: int
    client_id: int
    occurrence: str
    emails: list[Outgoing]
    skipped: str | None = None


def plan_firings(call: Call) -> list[PendingFiring]:
    """Evaluate every live rule in a short read transaction; render what each new firing sends."""
    pending: list[PendingFiring] = []
    with call.runtime.db.session() as session:
        clients = list(
            session.exec(
                select(CsClient).where(col(CsClient.deleted_at).is_(None), CsClient.stage != "churned")
            )
        )
        for rule in _live_rules(session, call.tenant):
            done = set(
                session.exec(
                    select(CsCommFiring.client_id, CsCommFiring.occurrence).where(
                        CsCommFiring.rule_id == rule.id
                    )
                ).all()
            )
            for cid, occ in occurrences(session, rule, clients):
                if (cid, occ) in done:
                    continue
                pending.append(_render_firing(session, rule, cid, occ))
    return pending


def _render_firing(session: Session, rule: CsCommRule, client_id: int, occ: str) -> PendingFiring:
    firing = PendingFiring(rule.id or 0, client_id, occ, [])
    client = session.get(CsClient, client_id)
    assert client is not None
    contacts = live_contacts(session, client, None)
    if rule.primary_only:
        contacts = [c for c in contacts if c.is_primary]
    if not contacts:
        firing.skipped = "no primary contact" if rule.primary_only else "no contacts"
        return firing
    try:
        emails, _ = prepare_emails(
            session, [client_id], [c.id or 0 for c in contacts], rule.subject, rule.body
        )
    except ValidationFailed as err:
        firing.skipped = err.message
        return firing
    for o in emails:
        # Keyed by the occurrence, not the text: editing the rule cannot make it mail the same event twice.
        o.key = hashlib.sha256(f"rule:{rule.id}:{client_id}:{occ}:{o.email.lower()}".encode()).hexdigest()
    firing.emails = emails
    if not emails:
        firing.skipped = "all contacts unsubscribed"
    return firing


def store_firings(call: Call, pending: list[PendingFiring], outcomes: list[SendOutcome]) -> list[Firing]:
    """Message rows and one firing row per occurrence that sent something (or had nothing to send)."""
    store_outcomes(call, outcomes, "automation")
    sent_by_key = {oc.email.key for oc in outcomes if oc.status in ("accepted", "unknown")}
    out = []
    for p in pending:
        sent = sum(o.key in sent_by_key for o in p.emails)
        if p.emails and not sent:
            skipped = "send failed; retried on the next run"
        else:
            skipped = p.skipped
            call.db.add(
                CsCommFiring(rule_id=p.rule_id, client_id=p.client_id, occurrence=p.occurrence, messages=sent)
            )
        out.append(
            Firing(
                rule_id=p.rule_id, client_id=p.client_id, occurrence=p.occurrence, sent=sent, skipped=skipped
            )
        )
    call.db.flush()
    call.target = "cs_comm_rule:*"
    call.audit_details["fired"] = len(out)
    return out


def _rule_crud(
    call: Call,
    action: str,
    rule_id: int | None,
    name: str | None,
    trigger: str | None,
    threshold: float | None,
    subject: str | None,
    body: str | None,
    primary_only: bool,
) -> AutomationResult:
    if action == "list":
        call.no_change()
        return AutomationResult(
            action=action, rules=[_rule_out(r) for r in _live_rules(call.db, call.tenant)], fired=[]
        )
    if action == "delete":
        rule = call.db.get(CsCommRule, rule_id or 0)
        if rule is None or rule.deleted_at is not None:
            raise NotFound(f"No rule {rule_id}.", field="rule_id", hint="List rules with action=list.")
        rule.deleted_at = datetime.now(UTC)
        call.db.add(rule)
        call.target = f"cs_comm_rule:{rule.id}"
        return AutomationResult(action=action, rules=[_rule_out(rule)], fired=[])
    require_all("create", name=name, trigger=trigger, subject=subject, body=body)
    if trigger == "score_drop" and threshold is None:
        raise ValidationFailed("score_drop needs threshold (points).", field="threshold")
    template_variables(str(subject), str(body))
    rule = CsCommRule(
        tenant=call.tenant,
        name=str(name),
        trigger=str(trigger),
        threshold=threshold,
        subject=str(subject),
        body=str(body),
        primary_only=primary_only,
        created_by=call.actor,
    )
    call.db.add(rule)
    call.db.flush()
    call.target = f"cs_comm_rule:{rule.id}"
    return AutomationResult(action=action, rules=[_rule_out(rule)], fired=[])


@toolset.tool(tier="write", idempotent=False, open_world=True)
async def automate_communications(
    call: Call,
    action: Annotated[Literal["create", "list", "delete", "run"], arg("run: evaluate and send.")],
    rule_id: Annotated[int | None, arg("Rule.", ge=1, le=MAX_ID)] = None,
    name: Annotated[str | None, arg("Name.", min_length=1, max_length=100)] = None,
    trigger: Annotated[Trigger | None, arg("Trigger.")] = None,
    threshold: Annotated[float | None, arg("score_drop: points lost.", gt=0, le=100)] = None,
    subject: Annotated[str | None, arg("Subject template.", min_length=1, max_length=300)] = None,
    body: Annotated[
        str | None,
        arg("Body template.", min_length=1, max_length=20_000),
    ] = None,
    primary_only: Annotated[bool, arg("Only the primary contact.")] = True,
) -> AutomationResult:
    """Rules emailing clients on health drops or urgent tickets; run sends once per occurrence."""
    if action != "run":
        args = (call, action, rule_id, name, trigger, threshold, subject, body, primary_only)
        return await call.in_thread(partial(_rule_crud, *args))
    pending = await call.in_thread(partial(plan_firings, call))
    emails = [o for p in pending for o in p.emails]
    outcomes: list[SendOutcome] = []
    if emails:
        creds = await call.in_thread(partial(sendgrid.require_credentials, call.runtime))
        outcomes = await deliver(call, creds, emails)
        raise_if_nothing_sent(outcomes)
    fired = await call.in_thread(partial(store_firings, call, pending, outcomes))
    if not fired:
        call.no_change()
    return AutomationResult(action=action, rules=[], fired=fired)


# --------------------------------------------------------------------------- newsletters


def next_run(schedule: str, anchor_day: int, after: date) -> date:
    """The first run date strictly after `after`: +7 days, or the anchor day of the next month (clamped)."""
    if schedule == "weekly":
        return after + timedelta(days=7)
    year, month = (after.year + 1, 1) if after.month == 12 else (after.year, after.month + 1)
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def due_dates(letter: CsNewsletter, today: date) -> tuple[date, date]:
    """(the run date this issue is for, the next run after today): missed runs are one issue, not many."""
    nxt = letter.next_run
    while nxt <= today:
        nxt = next_run(letter.schedule, letter.anchor_day, nxt)
    return letter.next_run, nxt


class NewsletterOut(Out):
    id: int = Field(description="Newsletter id.")
    name: str = Field(description="Name.")
    segment_rule: str | None = Field(description="Saved segment (null: all live clients).")
    schedule: str = Field(description="weekly | monthly.")
    next_run: date = Field(description="Next due date.")


class NewsletterResult(Out):
    action: str = Field(description="Action done.")
    newsletters: list[NewsletterOut] = Field(description="Newsletters touched or listed.")
    recipients: list[Recipient] = Field(description="run_due: per contact outcome.")
    plan: dict[str, Any] | None = Field(description="run_due: plan to confirm.")


def _letter_out(n: CsNewsletter) -> NewsletterOut:
    return NewsletterOut(
        id=n.id or 0, name=n.name, segment_rule=n.segment_rule, schedule=n.schedule, next_run=n.next_run
    )


def segment_members(session: Session, tenant: str, rule_name: str | None, as_of: date) -> list[int]:
    """Live, non-churned clients matching the saved segment rule (segments.evaluate, as segment_customers)."""
    clients = list(
        session.exec(
            select(CsClient)
            .where(CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None), CsClient.stage != "churned")
            .order_by(col(CsClient.id))
        )
    )
    if rule_name is None:
        return [c.id or 0 for c in clients]
    rule = session.exec(
        select(CsSegmentRule).where(CsSegmentRule.tenant == tenant, CsSegmentRule.name == rule_name)
    ).first()
    if rule is None:
        raise NotFound(
            f"No saved segment '{rule_name}'.",
            field="segment_rule",
            hint="Save one with segment_customers by=custom save_as=….",
        )
    conditions = segments.rule_conditions(rule.conditions)
    snaps = latest_snapshots(session, [c.id or 0 for c in clients], as_of)
    return [c.id or 0 for c in clients if segments.evaluate(conditions, c, snaps.get(c.id or 0), as_of)[0]]


def _due_issue(
    call: Call, confirm: str | None
) -> tuple[list[tuple[CsNewsletter, date, date, list[Outgoing]]], Any]:
    """Render every due newsletter's issue; a plan (nothing sent) unless confirmed."""
    today = datetime.now(UTC).date()
    letters = call.db.exec(
        select(CsNewsletter).where(
            CsNewsletter.tenant == call.tenant,
            col(CsNewsletter.deleted_at).is_(None),
            CsNewsletter.next_run <= today,
        )
    ).all()
    work = []
    for letter in letters:
        run_date, following = due_dates(letter, today)
        members = segment_members(call.db, call.tenant, letter.segment_rule, today)
        emails = prepare_emails(call.db, members, None, letter.subject, letter.body)[0] if members else []
        for o in emails:
            o.key = hashlib.sha256(
                f"newsletter:{letter.id}:{run_date}:{o.email.lower()}".encode()
            ).hexdigest()
        sent = existing_keys(call.db, [o.key for o in emails])
        work.append((letter, run_date, following, [o for o in emails if o.key not in sent]))
    if not work:
        call.no_change()
        return [], None
    total = sum(len(w[3]) for w in work)
    preview = PlanPreview(
        summary=f"Send {len(work)} due newsletter issue(s) to {total} contact(s) via SendGrid.",
        affected_count=total,
        sample=[{"newsletter": w[0].name, "run_date": str(w[1]), "recipients": len(w[3])} for w in work[:10]],
        reversible=False,
    )
    fingerprint = sorted([w[0].id, str(w[1]), sorted(o.key for o in w[3])] for w in work)
    plan = require_confirmation(call, confirm=confirm, preview=preview, fingerprint=fingerprint)
    return work, plan


def _record_issues(call: Call, work: list[Any], outcomes: list[SendOutcome]) -> list[Recipient]:
    recipients = store_outcomes(call, outcomes, "newsletter")
    ok = {oc.email.key for oc in outcomes if oc.status in ("accepted", "unknown")}
    for letter, run_date, following, emails in work:
        sent = sum(o.key in ok for o in emails)
        if emails and not sent:
            continue  # nothing went out: stays due
        call.db.add(CsNewsletterIssue(newsletter_id=letter.id or 0, run_date=run_date, recipients=sent))
        letter.next_run = following
        call.db.add(letter)
    call.db.flush()
    call.target = "cs_newsletter:*"
    return recipients


def _newsletter_crud(
    call: Call,
    action: str,
    newsletter_id: int | None,
    name: str | None,
    segment_rule: str | None,
    schedule: str | None,
    start: date | None,
    subject: str | None,
    body: str | None,
) -> NewsletterResult:
    def result(letters: list[CsNewsletter]) -> NewsletterResult:
        return NewsletterResult(
            action=action, newsletters=[_letter_out(n) for n in letters], recipients=[], plan=None
        )

    if action == "list":
        call.no_change()
        query = select(CsNewsletter).where(
            CsNewsletter.tenant == call.tenant, col(CsNewsletter.deleted_at).is_(None)
        )
        return result(list(call.db.exec(query.order_by(col(CsNewsletter.id)))))
    if action == "delete":
        letter = call.db.get(CsNewsletter, newsletter_id or 0)
        if letter is None or letter.deleted_at is not None:
            raise NotFound(f"No newsletter {newsletter_id}.", field="newsletter_id", hint="Use action=list.")
        letter.deleted_at = datetime.now(UTC)
        call.db.add(letter)
        call.target = f"cs_newsletter:{letter.id}"
        return result([letter])
    require_all("create", name=name, schedule=schedule, subject=subject, body=body)
    template_variables(str(subject), str(body))
    first = start or datetime.now(UTC).date()
    segment_members(call.db, call.tenant, segment_rule, first)  # the segment must exist
    letter = CsNewsletter(
        tenant=call.tenant,
        name=str(name),
        segment_rule=segment_rule,
        schedule=str(schedule),
        anchor_day=first.day,
        next_run=first,
        subject=str(subject),
        body=str(body),
        created_by=call.actor,
    )
    call.db.add(letter)
    call.db.flush()
    call.target = f"cs_newsletter:{letter.id}"
    return result([letter])


@toolset.tool(tier="destructive", idempotent=False, open_world=True)
async def automate_newsletters(
    call: Call,
    action: Annotated[Literal["create", "list", "delete", "run_due"], arg("What to do.")],
    newsletter_id: Annotated[int | None, arg("Newsletter.", ge=1, le=MAX_ID)] = None,
    name: Annotated[str | None, arg("Name.", min_length=1, max_length=100)] = None,
    segment_rule: Annotated[str | None, arg("Saved segment rule.", max_length=100)] = None,
    schedule: Annotated[Literal["weekly", "monthly"] | None, arg("Cadence.")] = None,
    start: Annotated[date | None, arg("First run (default today).")] = None,
    subject: Annotated[str | None, arg("Subject template.", min_length=1, max_length=300)] = None,
    body: Annotated[str | None, arg("Body template.", min_length=1, max_length=20_000)] = None,
    confirm: Confirm = None,
) -> NewsletterResult:
    """Weekly/monthly newsletters to a segment; run_due sends each due issue once (plan first)."""
    if action != "run_due":
        args = (call, action, newsletter_id, name, segment_rule, schedule, start, subject, body)
        return await call.in_thread(partial(_newsletter_crud, *args))
    creds = await call.in_thread(partial(sendgrid.require_credentials, call.runtime))
    work, plan = await call.in_thread(partial(_due_issue, call, confirm))
    letters = [_letter_out(w[0]) for w in work]
    if plan is not None:
        return NewsletterResult(
            action=action, newsletters=letters, recipients=[], plan=plan.model_dump(mode="json")
        )
    emails = [o for w in work for o in w[3]]
    outcomes = await deliver(call, creds, emails) if emails else []
    raise_if_nothing_sent(outcomes)
    recipients = await call.in_thread(partial(_record_issues, call, work, outcomes))
    return NewsletterResult(
        action=action, newsletters=[_letter_out(w[0]) for w in work], recipients=recipients, plan=None
    )
