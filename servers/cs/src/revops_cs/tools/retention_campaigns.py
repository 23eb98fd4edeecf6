"""Retention tools: a campaign for real clients picked by filter — tasks and queued messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

from revops_core.params import Confirm, Count, Ids, IdValue, Text
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_cs.models.clients import Tier
from revops_cs.services import retention_campaigns as campaigns
from revops_cs.services.churn_risk import Level
from revops_cs.toolsets import retention as toolset

MAX_TARGETS = 500


@toolset.tool(tier="destructive", idempotent=False, title="Retention campaign")
def execute_retention_campaign(
    call: Call,
    name: Annotated[str, Text("Campaign name.")],
    task_title: Annotated[str, Text("Task title.", max_length=300)],
    risk_level: Annotated[Level | None, Field(description="Churn-risk level.")] = None,
    tier: Annotated[Tier | None, Field(description="Only this tier.")] = None,
    client_ids: Annotated[list[IdValue] | None, Ids("client", max_items=MAX_TARGETS)] = None,
    due_in_days: Annotated[int, Count("Task due in N days.", le=365)] = 7,
    message_subject: Annotated[str | None, Text("Message subject.", max_length=300)] = None,
    message_body: Annotated[str | None, Text("Message body.", max_length=10_000)] = None,
    confirm: Confirm = None,
) -> Planned[campaigns.CampaignResult]:
    """Tasks and queued messages for clients picked by risk, tier or ids; plan, then confirm."""
    spec = campaigns.Campaign(
        name=name,
        task_title=task_title,
        risk_level=risk_level,
        tier=tier,
        client_ids=client_ids,
        due_in_days=due_in_days,
        message_subject=message_subject,
        message_body=message_body,
    )
    today = datetime.now(UTC).date()
    picked = campaigns.targets(call.db, call.tenant, spec, today)

    def run() -> campaigns.CampaignResult:
        result = campaigns.run(call.db, call.actor, spec, picked, today)
        call.target = f"cs_retention_campaign:{result.campaign_id}"
        call.audit_details.update(
            tasks=len(picked.clients), messages=sum(r.kind == "message" for r in result.created)
        )
        return result

    return plan_or_run(
        call,
        confirm=confirm,
        preview=campaigns.preview(spec, picked),
        fingerprint=campaigns.fingerprint(picked),
        run=run,
    )
