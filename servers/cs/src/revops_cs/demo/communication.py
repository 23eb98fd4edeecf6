"""Demo communication data: automation rules, a newsletter, and a year of sent emails with their events.

Deterministic from the `random.Random` passed in. Emails go to each live client's real demo contacts
(unsubscribed ones are skipped, as the send path does), and their SendGrid-style events follow the
funnel a CS mailbox typically sees: most delivered, some bounce, opens before clicks, a few opt-outs.
Message status and counters are folded from the generated events exactly as `ingest_email_events`
does (`apply_event`), so the metrics tool reads the same numbers either way.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, select

from revops_core.models import CoreContact
from revops_cs.models.clients import CsClient
from revops_cs.models.communication import CsCommRule, CsEmailEvent, CsEmailMessage, CsNewsletter
from revops_cs.services.email_events import apply_event  # the ingest fold: one definition of status

SUBJECTS = (
    "Your monthly {client} success summary",
    "New reports feature for {client}",
    "Planning {client}'s renewal together",
    "Tips to get more from dashboards",
)
BOUNCE_RATE, OPEN_RATE, CLICK_GIVEN_OPEN, UNSUB_RATE = 0.03, 0.45, 0.30, 0.01


def _rules(session: Session) -> None:
    session.add(
        CsCommRule(
            name="Health fell a band",
            trigger="band_drop",
            subject="{{client_name}}: can we help?",
            body="Hi {{first_name}}, your account health is now {{health_band}}. {{csm}} will call you.",
            created_by="demo",
        )
    )
    session.add(
        CsCommRule(
            name="Urgent ticket opened",
            trigger="urgent_ticket",
            subject="We are on your urgent ticket",
            body="Hi {{first_name}}, our team is working on it now.",
            created_by="demo",
        )
    )


def generate_communication(
    session: Session, rng: random.Random, clients: list[CsClient], as_of: date
) -> None:
    """Insert rules, a monthly newsletter and ~1 email per contact per month with events. No commit."""
    _rules(session)
    session.add(
        CsNewsletter(
            name="Monthly product digest",
            schedule="monthly",
            anchor_day=1,
            next_run=date(as_of.year + (as_of.month == 12), as_of.month % 12 + 1, 1),
            subject="{{client_name}} product digest",
            body="Hi {{first_name}}, here is what shipped this month.",
            created_by="demo",
        )
    )
    live = [c for c in clients if c.stage != "churned" and c.deleted_at is None]
    contacts = session.exec(
        select(CoreContact).where(col(CoreContact.company_id).in_([c.company_id for c in live]))
    ).all()
    by_company: dict[int, list[CoreContact]] = {}
    for contact in contacts:
        by_company.setdefault(contact.company_id or 0, []).append(contact)
    seq = 0
    for client in live:
        for month_back in range(12, 0, -1):
            sent_day = as_of - timedelta(days=30 * month_back - rng.randrange(0, 20))
            for contact in by_company.get(client.company_id, []):
                if contact.unsubscribed_at is not None:
                    continue
                seq += 1
                _email(session, rng, client, contact, sent_day, seq)


def _email(
    session: Session, rng: random.Random, client: CsClient, contact: CoreContact, day: date, seq: int
) -> None:
    sent_at = datetime.combine(day, time(9, rng.randrange(60)), tzinfo=UTC)
    subject = rng.choice(SUBJECTS).format(client=client.name)
    key = hashlib.sha256(f"demo:{seq}".encode()).hexdigest()
    message = CsEmailMessage(
        client_id=client.id or 0,
        contact_id=contact.id or 0,
        email=contact.email,
        subject=subject,
        body=f"Hello from your CS team at {client.name}.",
        source="demo",
        dedupe_key=key,
        status="accepted",
        provider_message_id=f"demo{seq:07d}",
        sent_at=sent_at,
    )
    session.add(message)
    session.flush()
    events: list[tuple[str, datetime]] = []
    if rng.random() < BOUNCE_RATE:
        events.append(("bounce", sent_at + timedelta(minutes=1)))
    else:
        events.append(("delivered", sent_at + timedelta(minutes=1)))
        if rng.random() < OPEN_RATE:
            opened = sent_at + timedelta(hours=rng.randrange(1, 48))
            events += [("open", opened)] * rng.randint(1, 3)
            if rng.random() < CLICK_GIVEN_OPEN:
                events.append(("click", opened + timedelta(minutes=2)))
        if rng.random() < UNSUB_RATE:
            events.append(("unsubscribe", sent_at + timedelta(days=1)))
            contact.unsubscribed_at = sent_at + timedelta(days=1)
            session.add(contact)
    for n, (event, when) in enumerate(events):
        apply_event(message, event, when)
        session.add(
            CsEmailEvent(
                sg_event_id=f"demo-{seq}-{n}",
                message_id=message.id,
                event=event,
                email=contact.email,
                occurred_at=when,
            )
        )
    session.add(message)
