"""SendGrid's event webhook folded into our message rows, and the e-mail metrics those rows give.

Each webhook record is stored once (by `sg_event_id`: SendGrid redelivers), found its message by our
`revops_ref` custom arg or SendGrid's message id, and folded into the message's status and counters
(`apply_event`, also used by the demo generator: one definition of status). Opt-outs and spam
reports unsubscribe the contact. Metrics follow REFERENCE.md: rates over delivered e-mails, null
when nothing was delivered (never a made-up zero).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_core.models import CoreContact
from revops_core.params import start_of_day
from revops_cs.models.communication import CsEmailEvent, CsEmailMessage
from revops_cs.output import Out


class EmailMetrics(Out):
    sent: int = Field(description="Emails SendGrid has (not unconfirmed timeouts).")
    bounces: int = Field(description="Bounced or dropped.")
    delivered: int = Field(description="With a delivery event, not bounced.")
    unknown: int = Field(description="No delivery or bounce event yet.")
    unique_opens: int = Field(description="Emails opened at least once.")
    unique_clicks: int = Field(description="Emails clicked at least once.")
    unsubscribes: int = Field(description="Unsubscribes.")
    complaints: int = Field(description="Spam reports.")
    open_rate: float | None = Field(description="unique_opens/delivered; null if none delivered.")
    ctr: float | None = Field(description="unique_clicks/delivered.")
    ctor: float | None = Field(description="unique_clicks/unique_opens.")
    unsubscribe_rate: float | None = Field(description="unsubscribes/delivered.")
    complaint_rate: float | None = Field(description="complaints/delivered.")


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def email_metrics(session: Session, client_ids: list[int] | None, since: date | None) -> EmailMetrics:
    """REFERENCE.md email metrics over stored messages (one row per e-mail SendGrid has or may have).

    An e-mail counts as delivered on SendGrid's `delivered` event, not by subtraction: one with no
    delivery or bounce event (still queued, deferred, or a timed-out send nobody confirmed) is
    `unknown`, never delivered. `sent` leaves out the timed-out sends no event has confirmed since.
    So delivered + bounces + unknown = every stored e-mail, and rates are over the delivered ones.
    """
    m = CsEmailMessage
    no_outcome = col(m.delivered_at).is_(None) & col(m.bounced_at).is_(None)
    # COUNT(column) counts the non-null values: one per e-mail bounced, opened, clicked…
    query = sa_select(
        func.count(case((col(m.status) != "unknown", 1))),
        func.count(col(m.bounced_at)),
        func.count(case((col(m.bounced_at).is_(None) & col(m.delivered_at).is_not(None), 1))),
        func.count(case((no_outcome, 1))),
        func.count(col(m.first_open_at)),
        func.count(col(m.first_click_at)),
        func.count(col(m.unsubscribed_at)),
        func.count(col(m.spam_reported_at)),
    ).select_from(m)
    if client_ids:
        query = query.where(col(m.client_id).in_(client_ids))
    if since is not None:
        query = query.where(col(m.sent_at) >= start_of_day(since))
    sent, bounces, delivered, unknown, opens, clicks, unsubs, spam = session.execute(query).one()
    return EmailMetrics(
        sent=sent,
        bounces=bounces,
        delivered=delivered,
        unknown=unknown,
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


# --------------------------------------------------------------------------- webhook


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


def ingest_events(session: Session, tenant: str, events: list[dict[str, Any]]) -> IngestResult:
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
            unsubscribed += _unsubscribe(session, tenant, email, when)
    session.flush()
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
