"""Newsletters: a weekly or monthly issue to the clients of a saved segment, each issue sent once.

`due` renders every due newsletter's issue (missed runs are one issue, not many); the tool plans and
confirms; `send_issues` sends through the one pipeline (`email_send`), records one issue per
newsletter that went out (or had nobody left to mail) and moves its next run past today. An issue
whose e-mails all failed stays due.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import NotFound
from revops_core.guards import PlanPreview
from revops_core.paging import Page, paginate
from revops_cs.models.clients import CsClient
from revops_cs.models.communication import CsNewsletter, CsNewsletterIssue
from revops_cs.models.usage import CsSegmentRule
from revops_cs.output import Out
from revops_cs.services import email_send, segments
from revops_cs.services.email_templates import template_variables
from revops_cs.services.health import latest_snapshots
from revops_cs.services.health_facts import portfolio_ids

if TYPE_CHECKING:
    from revops_core.server import Call
    from revops_cs.vendors.sendgrid import SendgridCredentials

Schedule = Literal["weekly", "monthly"]


class NewsletterOut(Out):
    id: int = Field(description="Newsletter id.")
    name: str = Field(description="Name.")
    segment_rule: str | None = Field(description="Saved segment (null: all live clients).")
    schedule: str = Field(description="weekly | monthly.")
    next_run: date = Field(description="Next due date.")


class NewsletterRun(Out):
    newsletters: list[NewsletterOut] = Field(description="Newsletters whose due issue was sent.")
    recipients: list[email_send.Recipient] = Field(description="Per contact outcome.")


# --------------------------------------------------------------------------- schedule


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


# --------------------------------------------------------------------------- newsletters


def _live(tenant: str) -> Any:
    return select(CsNewsletter).where(CsNewsletter.tenant == tenant, col(CsNewsletter.deleted_at).is_(None))


def page(session: Session, tenant: str, *, limit: int, cursor: str | None) -> Page[NewsletterOut]:
    return paginate(
        session,
        _live(tenant),
        cursor=cursor,
        limit=limit,
        keys=[col(CsNewsletter.id)],
        scope="newsletters",
        item=NewsletterOut.model_validate,
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
            hint="Save one with save_segment_rule.",
        )
    conditions = segments.rule_conditions(rule.conditions)
    snaps = latest_snapshots(session, portfolio_ids(tenant), as_of)
    return [c.id or 0 for c in clients if segments.evaluate(conditions, c, snaps.get(c.id or 0), as_of)[0]]


def create(
    session: Session,
    tenant: str,
    actor: str,
    *,
    name: str,
    segment_rule: str | None,
    schedule: Schedule,
    start: date | None,
    subject: str,
    body: str,
) -> CsNewsletter:
    template_variables(subject, body)
    first = start or datetime.now(UTC).date()
    segment_members(session, tenant, segment_rule, first)  # the segment must exist
    letter = CsNewsletter(
        tenant=tenant,
        name=name,
        segment_rule=segment_rule,
        schedule=schedule,
        anchor_day=first.day,
        next_run=first,
        subject=subject,
        body=body,
        created_by=actor,
    )
    session.add(letter)
    session.flush()
    return letter


def delete(session: Session, newsletter_id: int) -> CsNewsletter:
    """Soft-delete a live newsletter (its sent issues stay)."""
    letter = session.get(CsNewsletter, newsletter_id)
    if letter is None or letter.deleted_at is not None:
        raise NotFound(
            f"No newsletter {newsletter_id}.", field="newsletter_id", hint="List them with list_newsletters."
        )
    letter.deleted_at = datetime.now(UTC)
    session.add(letter)
    return letter


# --------------------------------------------------------------------------- due issues


@dataclass
class DueIssue:
    newsletter_id: int
    name: str
    run_date: date
    following: date
    emails: list[email_send.Outgoing]


def due(session: Session, tenant: str, today: date) -> list[DueIssue]:
    """Every due newsletter's issue, rendered for the segment's contacts not yet mailed this issue."""
    letters = session.exec(_live(tenant).where(CsNewsletter.next_run <= today).order_by(col(CsNewsletter.id)))
    issues = []
    for letter in letters:
        run_date, following = due_dates(letter, today)
        members = segment_members(session, tenant, letter.segment_rule, today)
        emails, _ = email_send.prepare(session, members, None, letter.subject, letter.body, allow_empty=True)
        email_send.rekey(emails, f"newsletter:{letter.id}:{run_date}")
        emails, _ = email_send.unsent(session, emails)
        issues.append(DueIssue(letter.id or 0, letter.name, run_date, following, emails))
    return issues


def fingerprint(issues: list[DueIssue]) -> list[list[Any]]:
    return sorted([i.newsletter_id, i.run_date, sorted(o.key for o in i.emails)] for i in issues)


def preview(issues: list[DueIssue]) -> PlanPreview:
    total = sum(len(i.emails) for i in issues)
    return PlanPreview(
        summary=f"Send {len(issues)} due newsletter issue(s) to {total} contact(s) via SendGrid.",
        affected_count=total,
        sample=[
            {"newsletter": i.name, "run_date": i.run_date.isoformat(), "recipients": len(i.emails)}
            for i in issues[:10]
        ],
        reversible=False,
    )


def send_issues(call: Call, creds: SendgridCredentials | None, issues: list[DueIssue]) -> NewsletterRun:
    """Send the due issues and record them, in the call's transaction.

    The newsletters are row-locked (PostgreSQL; SQLite's write transaction serialises anyway) and
    issues and messages re-checked, so two concurrent runs cannot send one issue twice."""
    session = call.db
    ids = [i.newsletter_id for i in issues]
    letters = {
        n.id: n
        for n in session.exec(select(CsNewsletter).where(col(CsNewsletter.id).in_(ids)).with_for_update())
    }
    sent_before = set(
        session.exec(
            select(col(CsNewsletterIssue.newsletter_id), col(CsNewsletterIssue.run_date)).where(
                col(CsNewsletterIssue.newsletter_id).in_(ids)
            )
        )
    )
    issues = [i for i in issues if (i.newsletter_id, i.run_date) not in sent_before]
    sent = email_send.send_unsent(call, creds, [o for i in issues for o in i.emails], source="newsletter")
    touched = []
    for issue in issues:
        count = sum(o.key in sent.keys for o in issue.emails)
        if issue.emails and not count:
            continue  # nothing went out: stays due
        session.add(
            CsNewsletterIssue(newsletter_id=issue.newsletter_id, run_date=issue.run_date, recipients=count)
        )
        letter = letters[issue.newsletter_id]
        letter.next_run = issue.following
        session.add(letter)
        touched.append(NewsletterOut.model_validate(letter))
    session.flush()
    call.target = "cs_newsletter:*"
    return NewsletterRun(newsletters=touched, recipients=sent.recipients)
