"""CS toolset `communication`: automated communications — rules that e-mail clients on health drops
or urgent tickets; a run sends each trigger occurrence once, after a confirmed plan."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.paging import Page
from revops_core.params import Confirm, Cursor, Id, Limit, Text, require
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_cs.services import automations, email_send
from revops_cs.toolsets import communication as toolset

RuleId = Annotated[int | None, Id("rule", see="list_automations", optional="delete only")]


@toolset.tool(tier="read", title="List automations", replaces="automate_communications action=list")
def list_automations(call: Call, limit: Limit = 50, cursor: Cursor = None) -> Page[automations.RuleOut]:
    """Live automated-communication rules, oldest first."""
    return automations.page(call.db, call.tenant, limit=limit, cursor=cursor)


@toolset.tool(tier="write", idempotent=False, title="Create or delete an automation")
def automate_communications(
    call: Call,
    action: Annotated[Literal["create", "delete"], Field(description="create a rule, or delete rule_id.")],
    rule_id: RuleId = None,
    name: Annotated[str | None, Text("create: name.", max_length=100)] = None,
    trigger: Annotated[automations.Trigger | None, Field(description="create: what fires the rule.")] = None,
    threshold: Annotated[float | None, Field(gt=0, le=100, description="score_drop: points lost.")] = None,
    subject: Annotated[str | None, Text("create: subject template.", max_length=300)] = None,
    body: Annotated[str | None, Text("create: body template ({{variables}}).", max_length=20_000)] = None,
    primary_only: Annotated[bool, Field(description="create: e-mail only the primary contact.")] = True,
) -> automations.RuleOut:
    """Create a rule e-mailing clients on band/score drops or urgent tickets, or delete one."""
    if action == "delete":
        rule = automations.delete(call.db, require(rule_id, "rule_id", when="action=delete"))
    else:
        when = "action=create"
        rule = automations.create(
            call.db,
            call.tenant,
            call.actor,
            name=require(name, "name", when=when),
            trigger=require(trigger, "trigger", when=when),
            threshold=threshold,
            subject=require(subject, "subject", when=when),
            body=require(body, "body", when=when),
            primary_only=primary_only,
        )
    call.target = f"cs_comm_rule:{rule.id}"
    return automations.RuleOut.model_validate(rule)


@toolset.tool(
    tier="destructive",
    idempotent=False,
    open_world=True,
    title="Run automations",
    replaces="automate_communications action=run",
)
def run_automations(call: Call, confirm: Confirm = None) -> Planned[automations.AutomationRun]:
    """Evaluate every rule and e-mail each new occurrence once: plan first, then confirm."""
    # Rendered in a read transaction of its own: the credential (an audited vault write) comes next.
    with call.runtime.db.session() as session:
        found = automations.pending(session, call.tenant)
    if not found:
        call.no_change()
        return email_send.finished(automations.AutomationRun(fired=[]))
    creds = email_send.credentials(call.runtime) if any(p.emails for p in found) else None
    return plan_or_run(
        call,
        confirm=confirm,
        preview=automations.preview(found),
        fingerprint=automations.fingerprint(found),
        run=lambda: automations.fire(call, creds, found),
    )
