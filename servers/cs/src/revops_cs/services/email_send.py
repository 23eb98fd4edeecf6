"""The one e-mail send pipeline: personal e-mails, automation rules, newsletters and retention campaigns.

    creds = email_send.credentials(call.runtime)               # 1. before the call's transaction
    emails, skipped = email_send.prepare(call.db, client_ids, None, subject, body)   # 2. render
    email_send.rekey(emails, f"campaign:{campaign_id}")         # (optional) one e-mail per occurrence
    emails, already = email_send.unsent(call.db, emails)        # 3. drop what was sent before
    sent = email_send.send(call, creds, emails, source="retention")                  # 4. send + store

1. The SendGrid credential is read in its own audited vault transaction, so read it first.
2. `prepare` renders `{{variables}}` from stored data for every live contact of the clients (or the
   named ones); unsubscribed contacts are listed, never rendered; missing data is a validation error.
3. Idempotency: every e-mail has a `dedupe_key` = hash(recipient, rendered subject, rendered body),
   or, after `rekey`, hash(scope, recipient). A repeat finds the earlier row — whatever its status —
   and reports the recipient `already_sent` instead of sending again. So a retry after a timeout
   never double-sends; an `unknown` row is never resent automatically.
4. `send` POSTs each e-mail once and stores one row per e-mail SendGrid accepted (`accepted`) or may
   have accepted (`unknown`: timed out). If every attempt failed outright (401, 500, 400…) it raises
   the first error and stores nothing.

Locking: run 2–4 in the call's one write transaction, so two identical concurrent sends serialise
(SQLite: the write lock; PostgreSQL: `prepare(lock=True)` row-locks the contacts) and the second
finds the first's rows. The price: on SQLite other writers wait while a send is in flight (bounded
by the HTTP deadline).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import (
    CircuitOpen,
    ConfigurationError,
    IntegrationAuth,
    RevOpsError,
    StalePlan,
    ValidationFailed,
)
from revops_core.guards import PlanPreview
from revops_core.models import CoreContact
from revops_core.plans import Planned
from revops_cs.models.clients import CsClient
from revops_cs.models.communication import CsEmailMessage
from revops_cs.output import Out
from revops_cs.services.clients import get_client
from revops_cs.services.email_templates import HEALTH_VARIABLES, render, template_variables, variable_values
from revops_cs.services.health import latest_snapshot
from revops_cs.vendors import sendgrid

if TYPE_CHECKING:
    from revops_core.server import Call, Runtime

T = TypeVar("T")


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


class EmailOut(Out):
    """What a send (or its preview) did for each contact, and the first recipient's rendered text."""

    recipients: list[Recipient] = Field(description="One row per contact considered.")
    subject: str | None = Field(description="Rendered subject (first recipient).")
    body: str | None = Field(description="Rendered body (first recipient).")
    note: str | None = Field(description="What happened and why.")


@dataclass
class Outgoing:
    """One rendered e-mail to one contact."""

    client_id: int
    contact_id: int
    email: str
    name: str | None
    subject: str
    body: str
    key: str

    def recipient(self, status: str, message_id: int | None = None, error: str | None = None) -> Recipient:
        return Recipient(
            client_id=self.client_id,
            contact_id=self.contact_id,
            email=self.email,
            status=status,
            message_id=message_id,
            error=error,
        )


@dataclass
class Sent:
    """What `send` did: one recipient row per e-mail, and the keys SendGrid has (or may have)."""

    recipients: list[Recipient]
    keys: set[str] = field(default_factory=set)

    @property
    def unknown(self) -> int:
        return sum(r.status == "unknown" for r in self.recipients)


def credentials(runtime: Runtime) -> sendgrid.SendgridCredentials:
    """The SendGrid credential, or `configuration_error` (read before the call's own transaction)."""
    return sendgrid.require_credentials(runtime)


def finished(result: T) -> Planned[T]:
    """The answer of a sending tool that needed no confirmation (one recipient, or nothing to send)."""
    return Planned[Any](status="done", plan_id=None, plan=None, result=result)


# --------------------------------------------------------------------------- rendering


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


def dedupe_key(email: str, subject: str, body: str) -> str:
    return hashlib.sha256("\x1f".join((email.lower(), subject, body)).encode()).hexdigest()


def _contact_recipient(client_id: int | None, contact: CoreContact, status: str) -> Recipient:
    return Recipient(
        client_id=client_id or 0,
        contact_id=contact.id or 0,
        email=contact.email,
        status=status,
        message_id=None,
        error=None,
    )


def prepare(
    session: Session,
    client_ids: list[int],
    contact_ids: list[int] | None,
    subject: str,
    body: str,
    *,
    lock: bool = False,
    allow_empty: bool = False,
) -> tuple[list[Outgoing], list[Recipient]]:
    """Render for every live contact of the clients (or the named ones); unsubscribed ones are listed.

    Clients without contacts are a validation error for a send someone asked for, unless
    `allow_empty` (a scheduled send to a segment simply mails nobody there)."""
    used = template_variables(subject, body)
    clients = [get_client(session, cid) for cid in dict.fromkeys(client_ids)]
    health = bool(HEALTH_VARIABLES & set(used))
    snaps = {c.id or 0: latest_snapshot(session, c.id or 0) for c in clients} if health else {}
    outgoing: list[Outgoing] = []
    skipped: list[Recipient] = []
    matched: set[int] = set()
    for client in clients:
        snap = snaps.get(client.id or 0)
        for contact in live_contacts(session, client, contact_ids, lock=lock):
            matched.add(contact.id or 0)
            if contact.unsubscribed_at is not None:
                skipped.append(_contact_recipient(client.id, contact, "unsubscribed"))
                continue
            values = variable_values(
                client, contact, snap.band if snap else None, snap.score if snap else None
            )
            subj = render(subject, values, client=client, contact=contact)
            text = render(body, values, client=client, contact=contact)
            outgoing.append(
                Outgoing(
                    client.id or 0,
                    contact.id or 0,
                    contact.email,
                    values["contact_name"],
                    subj,
                    text,
                    dedupe_key(contact.email, subj, text),
                )
            )
    missing = sorted(set(contact_ids or ()) - matched)
    if missing:
        raise ValidationFailed(
            f"Contact(s) {missing[:10]} do not belong to the given client(s) (or are deleted).",
            field="contact_ids",
            hint="Use contact ids of the clients' companies; nothing was sent.",
        )
    if not outgoing and not skipped and not allow_empty:
        raise ValidationFailed(
            "The client(s) have no contacts to email.", field="client_ids", hint="Add contacts first."
        )
    return outgoing, skipped


def rekey(emails: list[Outgoing], scope: str) -> None:
    """Key each e-mail by `scope` (a rule occurrence, a newsletter issue, a campaign) and recipient:
    editing the text cannot make the same occurrence mail anyone twice."""
    for o in emails:
        o.key = hashlib.sha256(f"{scope}:{o.email.lower()}".encode()).hexdigest()


def existing_keys(session: Session, keys: list[str]) -> dict[str, int]:
    """dedupe key → message id of the e-mails already stored (sent or possibly sent)."""
    if not keys:
        return {}
    rows = session.exec(
        select(CsEmailMessage.dedupe_key, CsEmailMessage.id).where(col(CsEmailMessage.dedupe_key).in_(keys))
    )
    return {k: i or 0 for k, i in rows}


def unsent(session: Session, emails: list[Outgoing]) -> tuple[list[Outgoing], list[Recipient]]:
    """(the e-mails not sent before, an `already_sent` recipient for each one that was)."""
    sent = existing_keys(session, [o.key for o in emails])
    already = [o.recipient("already_sent", sent[o.key]) for o in emails if o.key in sent]
    return [o for o in emails if o.key not in sent], already


def preview(emails: list[Outgoing], skipped: list[Recipient]) -> PlanPreview:
    """The plan of a send: how many, to whom (a sample), who is skipped."""
    return PlanPreview(
        summary=f"Send '{emails[0].subject}' to {len(emails)} contact(s) via SendGrid.",
        affected_count=len(emails),
        sample=[{"email": o.email, "client_id": o.client_id} for o in emails[:10]],
        reversible=False,
        notes=[f"{len(skipped)} contact(s) skipped (unsubscribed or already sent)."] if skipped else [],
    )


def fingerprint(emails: list[Outgoing]) -> list[list[Any]]:
    """What a send plan is bound to: who gets which e-mail (any change to data or text changes it)."""
    return sorted([o.contact_id, o.key] for o in emails)


# --------------------------------------------------------------------------- sending


@dataclass
class _Outcome:
    email: Outgoing
    status: Literal["accepted", "unknown", "failed", "not_attempted"]
    provider_id: str | None = None
    error: RevOpsError | None = None


async def _deliver(call: Call, creds: sendgrid.SendgridCredentials, emails: list[Outgoing]) -> list[_Outcome]:
    """POST each e-mail once. Stops early on errors that would repeat for every e-mail (auth, breaker)."""
    outcomes: list[_Outcome] = []
    options = call.vendor_options(sendgrid.SPEC.provider)
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
                outcomes.append(_Outcome(o, "accepted", await client.send(body)))
            except RevOpsError as err:
                outcomes.append(_Outcome(o, "unknown" if err.outcome == "unknown" else "failed", error=err))
                if isinstance(err, IntegrationAuth | CircuitOpen | ConfigurationError):
                    outcomes.extend(_Outcome(rest, "not_attempted") for rest in emails[i + 1 :])
                    break
            if call.ctx is not None and len(emails) > 1:
                await call.ctx.report_progress(i + 1, len(emails), f"{i + 1} of {len(emails)} sent")
    return outcomes


def _store(call: Call, outcomes: list[_Outcome], source: str) -> list[Recipient]:
    """One message row per e-mail SendGrid accepted or may have accepted; failures stay row-less."""
    out: list[Recipient] = []
    for oc in outcomes:
        o = oc.email
        if oc.status not in ("accepted", "unknown"):
            out.append(o.recipient(oc.status, error=oc.error.code if oc.error else None))
            continue
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
        out.append(o.recipient(oc.status, row.id))
    return out


def send(call: Call, creds: sendgrid.SendgridCredentials, emails: list[Outgoing], *, source: str) -> Sent:
    """Send each e-mail once and store what SendGrid has; if it has none of them, raise the first error
    (the call's transaction rolls back: nothing stored). Call from a synchronous tool body."""
    if not emails:
        return Sent([])
    outcomes = call.run_async(_deliver, call, creds, emails)
    if all(oc.status in ("failed", "not_attempted") for oc in outcomes):
        raise next(oc.error for oc in outcomes if oc.error is not None)
    recipients = _store(call, outcomes, source)
    call.audit_details["sent"] = sum(r.status == "accepted" for r in recipients)
    call.audit_details["unknown"] = sum(r.status == "unknown" for r in recipients)
    return Sent(recipients, {oc.email.key for oc in outcomes if oc.status in ("accepted", "unknown")})


def send_unsent(
    call: Call, creds: sendgrid.SendgridCredentials | None, emails: list[Outgoing], *, source: str
) -> Sent:
    """`send` the e-mails not stored before; `keys` then holds every e-mail the contacts have, sent
    now or by an earlier (or concurrent) call. `creds` may be None when the caller saw nothing to send."""
    fresh, already = unsent(call.db, emails)
    if fresh and creds is None:
        raise StalePlan("E-mails to send appeared after the plan was checked; nothing was sent.")
    sent = send(call, creds, fresh, source=source) if fresh and creds else Sent([])
    fresh_keys = {o.key for o in fresh}
    return Sent(sent.recipients + already, sent.keys | {o.key for o in emails if o.key not in fresh_keys})
