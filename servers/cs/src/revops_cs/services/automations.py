"""Automated communications: rules that e-mail a client's contacts when its health drops or an
urgent ticket opens — each trigger occurrence (a snapshot, a ticket) mails once, never again.

A run evaluates every live rule on the stored snapshots and tickets (`pending`), is planned and
confirmed by the tool, then `fire` sends through the one pipeline (`email_send`) and records one
`CsCommFiring` per occurrence that sent something or had nothing to send. An occurrence whose
e-mails all failed is not recorded, so the next run retries it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.guards import PlanPreview
from revops_core.paging import Page, paginate
from revops_cs.analytics.health import BAND_NAMES
from revops_cs.models.clients import CsClient
from revops_cs.models.communication import CsCommFiring, CsCommRule
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.support import CsTicket
from revops_cs.output import Out
from revops_cs.services import email_send
from revops_cs.services.email_templates import template_variables

if TYPE_CHECKING:
    from revops_core.server import Call
    from revops_cs.vendors.sendgrid import SendgridCredentials

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


class AutomationRun(Out):
    fired: list[Firing] = Field(description="Rule firings, each sent once.")


# --------------------------------------------------------------------------- rules


def _live(tenant: str) -> Any:
    return select(CsCommRule).where(CsCommRule.tenant == tenant, col(CsCommRule.deleted_at).is_(None))


def page(session: Session, tenant: str, *, limit: int, cursor: str | None) -> Page[RuleOut]:
    return paginate(
        session,
        _live(tenant),
        cursor=cursor,
        limit=limit,
        keys=[col(CsCommRule.id)],
        scope="automations",
        item=RuleOut.model_validate,
    )


def create(
    session: Session,
    tenant: str,
    actor: str,
    *,
    name: str,
    trigger: Trigger,
    threshold: float | None,
    subject: str,
    body: str,
    primary_only: bool,
) -> CsCommRule:
    if trigger == "score_drop" and threshold is None:
        raise ValidationFailed(
            "score_drop needs threshold (points).", field="threshold", hint="Pass threshold."
        )
    template_variables(subject, body)
    rule = CsCommRule(
        tenant=tenant,
        name=name,
        trigger=trigger,
        threshold=threshold,
        subject=subject,
        body=body,
        primary_only=primary_only,
        created_by=actor,
    )
    session.add(rule)
    session.flush()
    return rule


def delete(session: Session, rule_id: int) -> CsCommRule:
    """Soft-delete a live rule (its firings stay: the occurrences it mailed are history)."""
    rule = session.get(CsCommRule, rule_id)
    if rule is None or rule.deleted_at is not None:
        raise NotFound(f"No rule {rule_id}.", field="rule_id", hint="List rules with list_automations.")
    rule.deleted_at = datetime.now(UTC)
    session.add(rule)
    return rule


# --------------------------------------------------------------------------- evaluation


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


def _band_rank(band: str) -> int:
    return BAND_NAMES.index(band) if band in BAND_NAMES else -1


def occurrences(session: Session, rule: CsCommRule, client_ids: list[int]) -> list[tuple[int, str]]:
    """(client id, occurrence) pairs where the rule's trigger holds in the stored data."""
    if rule.trigger == "urgent_ticket":
        tickets = session.exec(
            select(CsTicket.id, CsTicket.client_id).where(
                CsTicket.priority == "urgent",
                col(CsTicket.client_id).in_(client_ids),
                CsTicket.created_at >= rule.created_at,  # a new rule does not mail about old tickets
            )
        )
        return [(cid, f"ticket:{tid}") for tid, cid in tickets]
    found = []
    for cid, pair in _last_two(session, client_ids).items():
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


@dataclass
class PendingFiring:
    rule_id: int
    client_id: int
    occurrence: str
    emails: list[email_send.Outgoing] = field(default_factory=list)
    skipped: str | None = None


def _fired(session: Session, rule_ids: list[int]) -> set[tuple[int, int, str]]:
    rows = session.exec(
        select(CsCommFiring.rule_id, CsCommFiring.client_id, CsCommFiring.occurrence).where(
            col(CsCommFiring.rule_id).in_(rule_ids)
        )
    )
    return {(r, c, o) for r, c, o in rows}


def pending(session: Session, tenant: str) -> list[PendingFiring]:
    """Every new occurrence of every live rule, with the e-mails it would send (rendered now)."""
    client_ids = list(
        session.exec(
            select(CsClient.id).where(
                CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None), CsClient.stage != "churned"
            )
        )
    )
    rules = list(session.exec(_live(tenant).order_by(col(CsCommRule.id))))
    done = _fired(session, [r.id or 0 for r in rules])
    found: list[PendingFiring] = []
    for rule in rules:
        for cid, occ in occurrences(session, rule, [c or 0 for c in client_ids]):
            if (rule.id, cid, occ) not in done:
                found.append(_render(session, rule, cid, occ))
    return found


def _render(session: Session, rule: CsCommRule, client_id: int, occurrence: str) -> PendingFiring:
    firing = PendingFiring(rule.id or 0, client_id, occurrence)
    client = session.get(CsClient, client_id)
    assert client is not None
    contacts = email_send.live_contacts(session, client, None)
    if rule.primary_only:
        contacts = [c for c in contacts if c.is_primary]
    if not contacts:
        firing.skipped = "no primary contact" if rule.primary_only else "no contacts"
        return firing
    try:
        emails, _ = email_send.prepare(
            session, [client_id], [c.id or 0 for c in contacts], rule.subject, rule.body
        )
    except ValidationFailed as err:  # e.g. a variable whose data this client lacks
        firing.skipped = err.message
        return firing
    # Keyed by the occurrence, not the text: editing the rule cannot make it mail the same event twice.
    email_send.rekey(emails, f"rule:{rule.id}:{client_id}:{occurrence}")
    firing.emails = emails
    if not emails:
        firing.skipped = "all contacts unsubscribed"
    return firing


def fingerprint(found: list[PendingFiring]) -> list[list[Any]]:
    return sorted([p.rule_id, p.client_id, p.occurrence, sorted(o.key for o in p.emails)] for p in found)


def preview(found: list[PendingFiring]) -> PlanPreview:
    emails = sum(len(p.emails) for p in found)
    return PlanPreview(
        summary=f"Fire {len(found)} rule occurrence(s): send {emails} e-mail(s) via SendGrid.",
        affected_count=emails,
        sample=[
            {
                "rule_id": p.rule_id,
                "client_id": p.client_id,
                "occurrence": p.occurrence,
                "emails": len(p.emails),
                "skipped": p.skipped,
            }
            for p in found[:10]
        ],
        reversible=False,
        notes=["Each occurrence mails once; a failed send is retried on the next run."],
    )


def fire(call: Call, creds: SendgridCredentials | None, found: list[PendingFiring]) -> AutomationRun:
    """Send the pending firings' e-mails and record the firings, in the call's transaction.

    The rules are row-locked (PostgreSQL; SQLite's write transaction serialises anyway) and the
    firings and messages re-checked, so two concurrent runs cannot mail one occurrence twice."""
    session = call.db
    rule_ids = sorted({p.rule_id for p in found})
    list(session.exec(select(CsCommRule.id).where(col(CsCommRule.id).in_(rule_ids)).with_for_update()))
    done = _fired(session, rule_ids)
    found = [p for p in found if (p.rule_id, p.client_id, p.occurrence) not in done]
    sent = email_send.send_unsent(call, creds, [o for p in found for o in p.emails], source="automation")
    out = []
    for p in found:
        count = sum(o.key in sent.keys for o in p.emails)
        skipped = p.skipped
        if p.emails and not count:
            skipped = "send failed; retried on the next run"
        else:
            session.add(
                CsCommFiring(
                    rule_id=p.rule_id, client_id=p.client_id, occurrence=p.occurrence, messages=count
                )
            )
        out.append(
            Firing(
                rule_id=p.rule_id, client_id=p.client_id, occurrence=p.occurrence, sent=count, skipped=skipped
            )
        )
    session.flush()
    call.target = "cs_comm_rule:*"
    call.audit_details["fired"] = len(out)
    return AutomationRun(fired=out)
