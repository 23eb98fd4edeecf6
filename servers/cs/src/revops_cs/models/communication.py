"""CS tables for communication: sent emails and the delivery events SendGrid reports for them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from revops_core.db import utc_field

MESSAGE_STATUSES = (
    "accepted",  # SendGrid answered 202: queued for delivery
    "unknown",  # the send timed out: SendGrid may or may not have it; never resent automatically
    "delivered",
    "deferred",
    "bounced",
    "dropped",
)


class CsEmailMessage(SQLModel, table=True):
    """One email to one contact. A row exists only for a send SendGrid accepted or may have accepted.

    `dedupe_key` (unique) is a hash of recipient + rendered subject + body (or, for automations and
    newsletters, of rule + client + occurrence): a retried call finds the earlier row and does not
    send again, even when the earlier outcome was `unknown`.
    """

    __tablename__ = "cs_email_message"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    client_id: int = Field(foreign_key="cs_client.id", index=True)
    contact_id: int = Field(foreign_key="core_contact.id", index=True)
    email: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(default="manual", max_length=40, description="manual | automation | newsletter | …")
    dedupe_key: str = Field(max_length=64, unique=True)
    status: str = Field(max_length=20, index=True)
    provider_message_id: str | None = Field(default=None, max_length=200, index=True)
    sent_at: datetime = utc_field(default_now=True, index=True)
    delivered_at: datetime | None = utc_field(nullable=True)
    bounced_at: datetime | None = utc_field(nullable=True)
    first_open_at: datetime | None = utc_field(nullable=True)
    first_click_at: datetime | None = utc_field(nullable=True)
    opens: int = 0
    clicks: int = 0
    unsubscribed_at: datetime | None = utc_field(nullable=True)
    spam_reported_at: datetime | None = utc_field(nullable=True)


class CsEmailEvent(SQLModel, table=True):
    """One SendGrid event-webhook record, kept once per `sg_event_id` (SendGrid retries deliveries)."""

    __tablename__ = "cs_email_event"

    id: int | None = Field(default=None, primary_key=True)
    sg_event_id: str = Field(max_length=100, unique=True)
    message_id: int | None = Field(default=None, foreign_key="cs_email_message.id", index=True)
    event: str = Field(max_length=30)
    email: str = Field(max_length=320)
    occurred_at: datetime = utc_field()
    url: str | None = Field(default=None, max_length=2000)


class CsCommRule(SQLModel, table=True):
    """An automated communication: when `trigger` fires for a client, email its contacts."""

    __tablename__ = "cs_comm_rule"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    name: str = Field(max_length=100)
    trigger: str = Field(max_length=30, description="band_drop | score_drop | urgent_ticket")
    threshold: float | None = Field(default=None, description="score_drop: points lost between snapshots.")
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    primary_only: bool = True
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)
    deleted_at: datetime | None = utc_field(nullable=True)


class CsCommFiring(SQLModel, table=True):
    """A rule fired once for one client and one trigger occurrence (a snapshot, a ticket): never again."""

    __tablename__ = "cs_comm_firing"
    __table_args__ = (UniqueConstraint("rule_id", "client_id", "occurrence", name="uq_cs_comm_firing"),)

    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = Field(foreign_key="cs_comm_rule.id", index=True)
    client_id: int = Field(foreign_key="cs_client.id")
    occurrence: str = Field(max_length=60, description="snapshot:<id> or ticket:<id>.")
    messages: int = Field(description="Emails sent (accepted or unknown outcome).")
    fired_at: datetime = utc_field(default_now=True)


class CsNewsletter(SQLModel, table=True):
    """A recurring newsletter to the clients of a saved segment (all live clients when none)."""

    __tablename__ = "cs_newsletter"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(default="default", max_length=64)
    name: str = Field(max_length=100)
    segment_rule: str | None = Field(default=None, max_length=100, description="CsSegmentRule name.")
    schedule: str = Field(max_length=10, description="weekly | monthly")
    anchor_day: int = Field(description="monthly: day of month wanted (clamped to short months).")
    next_run: date
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(max_length=200)
    created_at: datetime = utc_field(default_now=True)
    deleted_at: datetime | None = utc_field(nullable=True)


class CsNewsletterIssue(SQLModel, table=True):
    """One sent issue of a newsletter: the run date it was due for, sent once."""

    __tablename__ = "cs_newsletter_issue"
    __table_args__ = (UniqueConstraint("newsletter_id", "run_date", name="uq_cs_newsletter_issue"),)

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(foreign_key="cs_newsletter.id", index=True)
    run_date: date
    recipients: int = Field(description="Emails accepted (or outcome unknown).")
    sent_at: datetime = utc_field(default_now=True)
