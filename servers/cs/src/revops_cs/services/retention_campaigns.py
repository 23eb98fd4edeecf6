"""Retention campaigns: pick real clients by filter, then create one task (and a queued message) each.

Sending is the communication toolset's job (vendor call, dedupe, a plan of its own): a campaign
only records its messages as queued and says how to send them, never claiming a send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.guards import PlanPreview
from revops_core.models import CoreContact
from revops_cs.models.clients import CsClient, Tier
from revops_cs.models.retention import CsCampaignMessage, CsRetentionCampaign, CsRetentionTask
from revops_cs.output import Out
from revops_cs.services.churn_risk import Level, at_level, select_clients
from revops_cs.services.clients import get_client

SAMPLE = 10  # clients shown in a plan


@dataclass(frozen=True)
class Campaign:
    """What the caller asked for (validated by the tool's signature)."""

    name: str
    task_title: str
    risk_level: Level | None
    tier: Tier | None
    client_ids: list[int] | None
    due_in_days: int
    message_subject: str | None
    message_body: str | None


@dataclass(frozen=True)
class Targets:
    clients: list[CsClient]
    contacts: dict[int, int]  # client id -> the contact its message goes to


class CreatedRow(Out):
    kind: Literal["task", "message"] = Field(description="task or message.")
    id: int = Field(description="Row id.")
    client_id: int = Field(description="Client id.")
    detail: str = Field(description="Title or recipient.")


class CampaignResult(Out):
    campaign_id: int = Field(description="Campaign id.")
    targets: list[int] = Field(description="Client ids targeted.")
    created: list[CreatedRow] = Field(description="Exactly the rows created.")
    emails_sent: int = Field(description="Emails sent (0: messages are queued).")
    note: str = Field(description="What happened to messages.")


def targets(session: Session, tenant: str, spec: Campaign, day: date) -> Targets:
    """The clients the filter selects on `day` and their message recipients; refuses an empty pick."""
    if spec.risk_level is None and spec.tier is None and not spec.client_ids:
        raise ValidationFailed(
            "No target filter given.", field="risk_level", hint="Give risk_level, tier or client_ids."
        )
    if (spec.message_subject is None) != (spec.message_body is None):
        raise ValidationFailed(
            "Give both message_subject and message_body, or neither.",
            field="message_body",
            hint="Add the other.",
        )
    if spec.client_ids:
        clients = [c for c in _named(session, spec.client_ids) if spec.tier is None or c.tier == spec.tier]
    else:
        clients = select_clients(session, tenant, None, spec.tier)
    if spec.risk_level is not None:
        clients = at_level(session, clients, day, spec.risk_level)
    if not clients:
        raise ValidationFailed(
            "The filter selects no clients; nothing was planned.",
            field="risk_level",
            hint="Widen the filter.",
        )
    return Targets(clients, primary_contacts(session, clients) if spec.message_subject else {})


def _named(session: Session, client_ids: list[int]) -> list[CsClient]:
    try:
        return [get_client(session, cid) for cid in dict.fromkeys(client_ids)]
    except NotFound as exc:
        raise NotFound(exc.message, field="client_ids", hint=exc.hint) from None


def primary_contacts(session: Session, clients: list[CsClient]) -> dict[int, int]:
    """client id -> contact id of its primary (else first) live, subscribed contact."""
    out: dict[int, int] = {}
    for c in clients:
        contact = session.exec(
            select(CoreContact.id)
            .where(
                CoreContact.company_id == c.company_id,
                col(CoreContact.deleted_at).is_(None),
                col(CoreContact.unsubscribed_at).is_(None),
            )
            .order_by(col(CoreContact.is_primary).desc(), col(CoreContact.id))
        ).first()
        if contact is not None:
            out[c.id or 0] = contact
    return out


def preview(spec: Campaign, picked: Targets) -> PlanPreview:
    messages = f" and {len(picked.contacts)} queued message(s)" if spec.message_subject else ""
    return PlanPreview(
        summary=f"Create campaign '{spec.name}': {len(picked.clients)} task(s){messages}.",
        affected_count=len(picked.clients) + len(picked.contacts),
        sample=[{"client_id": c.id, "name": c.name, "tier": c.tier} for c in picked.clients[:SAMPLE]],
        reversible=False,
        notes=["Messages are recorded as queued; no email is sent by this tool."]
        if spec.message_subject
        else [],
    )


def fingerprint(picked: Targets) -> dict[str, object]:
    return {"targets": [c.id for c in picked.clients], "contacts": sorted(picked.contacts.items())}


def run(session: Session, actor: str, spec: Campaign, picked: Targets, day: date) -> CampaignResult:
    """Create the campaign, one task per client and one queued message per reachable client."""
    campaign = CsRetentionCampaign(
        name=spec.name,
        filter=json.dumps({"risk_level": spec.risk_level, "tier": spec.tier, "client_ids": spec.client_ids}),
        message_subject=spec.message_subject,
        message_body=spec.message_body,
        created_by=actor,
    )
    session.add(campaign)
    session.flush()
    created: list[CreatedRow] = []
    for c in picked.clients:
        cid = c.id or 0
        task = CsRetentionTask(
            campaign_id=campaign.id,
            client_id=cid,
            title=spec.task_title,
            owner=c.owner,
            due_date=day + timedelta(days=spec.due_in_days),
        )
        session.add(task)
        session.flush()
        created.append(CreatedRow(kind="task", id=task.id or 0, client_id=cid, detail=spec.task_title))
        contact_id = picked.contacts.get(cid)
        if spec.message_subject and spec.message_body and contact_id is not None:
            contact = session.get(CoreContact, contact_id)
            msg = CsCampaignMessage(
                campaign_id=campaign.id or 0,
                client_id=cid,
                contact_id=contact_id,
                to_email=contact.email if contact else None,
                subject=spec.message_subject,
                body=spec.message_body,
            )
            session.add(msg)
            session.flush()
            created.append(
                CreatedRow(kind="message", id=msg.id or 0, client_id=cid, detail=msg.to_email or "")
            )
    ids = [c.id or 0 for c in picked.clients]
    note = (
        "Messages queued in cs_campaign_message; no email was sent. To send, call "
        f"send_personalized_email with client_ids={ids} and the same subject/body."
        if spec.message_subject
        else "No messages."
    )
    return CampaignResult(
        campaign_id=campaign.id or 0, targets=ids, created=created, emails_sent=0, note=note
    )
