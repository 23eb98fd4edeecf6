"""Safety guards: plan → confirm for destructive tools, human approval for critical ones, spend caps.

A destructive tool's first call changes nothing and returns a `Plan` bound to the tool, the normalised
arguments, the actor and a fingerprint of the state it would touch. The second call, with
`confirm=<plan_id>`, re-checks all four and consumes the plan *in the tool's own transaction*: if the
body fails afterwards the transaction rolls back and the plan stays usable.

Critical tools additionally need consent the model cannot give itself: an out-of-band
`revops approve <plan_id>` (`approve()`), or an elicitation the client answers. `server._wrap` asks the
client (see `approval_resolver`) and records the answer on `Call.approval`; `require_confirmation`
only reads it, so tool authors never deal with the protocol.

Spend caps (`reserve_spend`) record every reservation in `core_spend_ledger` under a lock that
serialises concurrent reservations, so a cap is never exceeded, even by many small steps.
"""

from __future__ import annotations

import hashlib
import inspect
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.to_thread
import rfc8785
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python
from sqlalchemy import Column, Index, Text, func, text
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, select

from revops_core.audit import append as audit_append
from revops_core.db import Database, utc_field, utcnow
from revops_core.errors import ApprovalRequired, ConfirmationRequired, NotFound, StalePlan, ValidationFailed
from revops_core.money import Money

if TYPE_CHECKING:
    from revops_core.server import Call, Runtime, ToolDef
    from revops_core.settings import Settings

SPEND_LOCK_KEY = 7411003
"""PostgreSQL advisory lock serialising spend reservations (SQLite: BEGIN IMMEDIATE does it)."""


# --------------------------------------------------------------------------- tables


class CorePlan(SQLModel, table=True):
    """One plan of a destructive/critical tool call; single use, expires."""

    __tablename__ = "core_plan"

    plan_id: str = SQLField(primary_key=True, max_length=64)
    tenant: str = SQLField(default="default", max_length=64, index=True)
    tool: str = SQLField(max_length=200)
    actor: str = SQLField(max_length=200)
    args_hash: str = SQLField(max_length=64)
    fingerprint: str = SQLField(max_length=64)
    requires_approval: bool = False
    preview: str = SQLField(sa_column=Column(Text, nullable=False))
    created_at: datetime = utc_field(default_now=True)
    expires_at: datetime = utc_field(index=True)
    used_at: datetime | None = utc_field(nullable=True)
    approved_by: str | None = SQLField(default=None, max_length=200)
    approved_at: datetime | None = utc_field(nullable=True)
    approval_asked_at: datetime | None = utc_field(nullable=True)


class CoreSpendLedger(SQLModel, table=True):
    """Every spend reservation; caps are sums over this table."""

    __tablename__ = "core_spend_ledger"
    __table_args__ = (Index("ix_core_spend_ledger_window", "tenant", "currency", "created_at"),)

    id: int | None = SQLField(default=None, primary_key=True)
    tenant: str = SQLField(default="default", max_length=64)
    scope: str = SQLField(max_length=100)
    campaign: str | None = SQLField(default=None, max_length=200, index=True)
    amount_minor: int
    currency: str = SQLField(max_length=3)
    created_at: datetime = utc_field(default_now=True)


# --------------------------------------------------------------------------- API models


class PlanPreview(BaseModel):
    """What a tool would do; the tool computes it from the rows it would touch."""

    summary: str = Field(description="One sentence: what the confirmed call will do.")
    affected_count: int = Field(ge=0, description="Number of records the call would change.")
    sample: list[dict[str, Any]] = Field(description="A few of the affected records.")
    money: Money | None = Field(default=None, description="Money the call would spend or move, if any.")
    reversible: bool = Field(description="True when the change can be undone (e.g. a soft delete).")
    notes: list[str] = Field(default_factory=list, description="Caveats the user should read first.")
    requires_approval: bool = Field(
        default=False,
        description="Also needs a person's approval although the tool is not critical (e.g. a bulk change "
        "above the configured size).",
    )


class Plan(BaseModel):
    """A plan returned instead of executing; confirm it with `confirm=<plan_id>`."""

    plan_id: str = Field(description="Pass as `confirm` (same tool, same arguments) to execute.")
    tool: str = Field(description="The tool this plan is bound to.")
    summary: str = Field(description="What the confirmed call will do.")
    affected_count: int = Field(description="Number of records the call would change.")
    sample: list[dict[str, Any]] = Field(description="A few of the affected records.")
    money: Money | None = Field(description="Money the call would spend or move, if any.")
    reversible: bool = Field(description="True when the change can be undone.")
    notes: list[str] = Field(default_factory=list, description="Caveats the user should read first.")
    expires_at: datetime = Field(description="The plan cannot be confirmed after this time (UTC).")
    requires_approval: bool = Field(description="True when a person must also approve (critical tier).")
    next_step: str = Field(description="What to do to execute the plan.")


class ApprovalForm(BaseModel):
    """The question a person answers in the client (elicitation)."""

    approve: bool = Field(description="Approve this critical action?")


ApprovalStatus = Literal["approved", "declined", "cancelled", "timeout", "unsupported", "not_asked"]


@dataclass(frozen=True)
class ApprovalAnswer:
    """What the client said when asked to approve (recorded on `Call.approval` by the wrapper)."""

    status: ApprovalStatus
    via: Literal["elicitation", "input_required", "none"] = "none"


# --------------------------------------------------------------------------- hashing


def canonical_hash(value: Any) -> str:
    """SHA-256 over RFC 8785 canonical JSON: equal data → equal hash, whatever the key order."""
    return hashlib.sha256(rfc8785.dumps(to_jsonable_python(value))).hexdigest()


def normalised_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments a plan is bound to: everything but `confirm` itself."""
    return {k: v for k, v in arguments.items() if k != "confirm"}


def _to_plan(row: CorePlan) -> Plan:
    preview = PlanPreview.model_validate_json(row.preview)
    if row.requires_approval:
        next_step = (
            f"A person must approve, then call {row.tool} again with the same arguments and "
            f"confirm='{row.plan_id}'. Approve by answering the client's prompt, or with "
            f"`revops approve {row.plan_id}`."
        )
    else:
        next_step = f"Show the plan to the user; if they agree, call {row.tool} again with the same "
        next_step += f"arguments and confirm='{row.plan_id}'."
    return Plan(
        plan_id=row.plan_id,
        tool=row.tool,
        summary=preview.summary,
        affected_count=preview.affected_count,
        sample=preview.sample,
        money=preview.money,
        reversible=preview.reversible,
        notes=preview.notes,
        expires_at=row.expires_at,
        requires_approval=row.requires_approval,
        next_step=next_step,
    )


def _load(session: Session, plan_id: str, tenant: str, *, lock: bool) -> CorePlan | None:
    query = select(CorePlan).where(CorePlan.plan_id == plan_id, CorePlan.tenant == tenant)
    if lock:
        query = query.with_for_update()  # PostgreSQL: two confirms of one plan serialise here
    return session.exec(query).first()


# --------------------------------------------------------------------------- plan → confirm


def require_confirmation(
    call: Call, *, confirm: str | None, preview: PlanPreview, fingerprint: Any
) -> Plan | None:
    """Without `confirm`: store and return a plan (nothing else changes). With it: check and consume.

    Returns None when the call is confirmed (and, for critical tools, approved): the tool executes in
    the same transaction that consumed the plan. Raises `NotFound`, `ConfirmationRequired`,
    `StalePlan` or `ApprovalRequired` otherwise; the wrapper rolls back, so nothing changes.
    """
    session = call.db
    args_hash = canonical_hash(normalised_arguments(call.arguments))
    state_hash = canonical_hash(fingerprint)
    if confirm is None:
        return _create_plan(call, session, preview, args_hash, state_hash)

    row = _load(session, confirm, call.tenant, lock=True)
    if row is None:
        raise NotFound(
            f"No plan '{confirm}'.",
            field="confirm",
            hint=f"Call {call.tool.name} without confirm to get a plan, then pass its plan_id.",
        )
    _check_binding(call, row, args_hash)
    now = utcnow()
    if row.used_at is not None:
        raise ConfirmationRequired(
            f"Plan {row.plan_id} was already used at {row.used_at.isoformat()}; a plan executes once.",
            field="confirm",
            hint=f"Call {call.tool.name} without confirm to get a new plan.",
        )
    if now >= row.expires_at:
        raise ConfirmationRequired(
            f"Plan {row.plan_id} expired at {row.expires_at.isoformat()}.",
            field="confirm",
            hint=f"Call {call.tool.name} without confirm to get a new plan.",
        )
    if row.fingerprint != state_hash:
        raise StalePlan(f"The data plan {row.plan_id} was made from has changed since; nothing was done.")
    if row.requires_approval:
        _check_approval(call, row, now)
    row.used_at = now
    session.add(row)
    audit_append(
        session,
        actor=call.actor,
        action="plan.confirm",
        target=f"core_plan:{row.plan_id}",
        details={"tool": row.tool, "approved_by": row.approved_by},
        tenant=call.tenant,
    )
    session.flush()
    return None


def _create_plan(call: Call, session: Session, preview: PlanPreview, args_hash: str, state_hash: str) -> Plan:
    now = utcnow()
    row = CorePlan(
        plan_id="pl_" + secrets.token_urlsafe(18),
        tenant=call.tenant,
        tool=call.tool.name,
        actor=call.actor,
        args_hash=args_hash,
        fingerprint=state_hash,
        requires_approval=call.tool.tier == "critical" or preview.requires_approval,
        preview=preview.model_dump_json(),
        created_at=now,
        expires_at=now + timedelta(seconds=call.settings.plan_ttl_seconds),
    )
    session.add(row)
    audit_append(
        session,
        actor=call.actor,
        action="plan.create",
        target=f"core_plan:{row.plan_id}",
        details={
            "tool": row.tool,
            "affected_count": preview.affected_count,
            "requires_approval": row.requires_approval,
        },
        tenant=call.tenant,
    )
    session.flush()
    call.no_change()
    return _to_plan(row)


def _check_binding(call: Call, row: CorePlan, args_hash: str) -> None:
    fresh = f"Call {call.tool.name} without confirm to get a plan for exactly this call."
    if row.tool != call.tool.name:
        raise ConfirmationRequired(
            f"Plan {row.plan_id} was made for tool {row.tool}, not {call.tool.name}.",
            field="confirm",
            hint=fresh,
        )
    if row.actor != call.actor:
        raise ConfirmationRequired(
            f"Plan {row.plan_id} belongs to another actor; only its creator can confirm it.",
            field="confirm",
            hint=fresh,
        )
    if row.args_hash != args_hash:
        raise ConfirmationRequired(
            f"The arguments differ from those plan {row.plan_id} was made for.",
            field="confirm",
            hint="Repeat the planned call with the same arguments, or get a new plan without confirm.",
        )


def _check_approval(call: Call, row: CorePlan, now: datetime) -> None:
    """Critical tier (or a plan that asked for approval): an out-of-band approval, or a client's
    'approve' answered in time (only critical tools ask the client; the others need `revops approve`)."""
    if row.approved_at is not None:
        return
    answer: ApprovalAnswer = getattr(call, "approval", None) or ApprovalAnswer("not_asked")
    timeout = timedelta(seconds=call.settings.approval_timeout_seconds)
    # Multi-round-trip answers arrive in a later request: it must come within the timeout of the
    # question (recorded when it was asked), or it counts as no.
    late = row.approval_asked_at is None or now - row.approval_asked_at > timeout
    if answer.status == "approved" and answer.via == "input_required" and late:
        answer = ApprovalAnswer("timeout", answer.via)
    if answer.status == "approved":
        row.approved_by = f"client:{call.actor}"
        row.approved_at = now
        audit_append(
            session := call.db,
            actor=call.actor,
            action="plan.approve",
            target=f"core_plan:{row.plan_id}",
            details={"tool": row.tool, "via": answer.via},
            tenant=call.tenant,
        )
        session.add(row)
        return
    cli = f"`revops approve {row.plan_id}`"
    reasons = {
        "declined": "The approval was declined",
        "cancelled": "The approval prompt was cancelled",
        "timeout": "The approval prompt was not answered in time",
        "unsupported": "This client cannot show approval prompts",
        "not_asked": "This action needs a person's approval and has none yet",
    }
    raise ApprovalRequired(
        f"{reasons[answer.status]}; nothing was done (plan {row.plan_id}).",
        hint=f"A person must approve: run {cli} in a terminal, then call again with the same confirm.",
        details={"plan_id": row.plan_id, "approval": answer.status},
    )


def approve(db: Database | Session, plan_id: str, approver: str, *, tenant: str = "default") -> Plan:
    """Approve a critical plan out of band (the `revops approve` command). Audited `plan.approve`."""
    if isinstance(db, Session):
        return _approve(db, plan_id, approver, tenant)
    with db.session(write=True) as session:
        return _approve(session, plan_id, approver, tenant)


def _approve(session: Session, plan_id: str, approver: str, tenant: str) -> Plan:
    row = _load(session, plan_id, tenant, lock=True)
    if row is None:
        raise NotFound(f"No plan '{plan_id}'.", field="plan_id")
    if row.used_at is not None:
        raise ConfirmationRequired(f"Plan {plan_id} was already used.", field="plan_id")
    if utcnow() >= row.expires_at:
        raise ConfirmationRequired(
            f"Plan {plan_id} expired at {row.expires_at.isoformat()}.",
            field="plan_id",
            hint="Ask for a new plan; approve it before it expires.",
        )
    if not row.requires_approval:
        raise ValidationFailed(
            f"Plan {plan_id} ({row.tool}) does not need approval; it only needs confirm.",
            field="plan_id",
        )
    if row.approved_at is None:
        row.approved_by = approver
        row.approved_at = utcnow()
        session.add(row)
        audit_append(
            session,
            actor=approver,
            action="plan.approve",
            target=f"core_plan:{plan_id}",
            details={"tool": row.tool, "via": "out_of_band"},
            tenant=tenant,
        )
        session.flush()
    return _to_plan(row)


def get_plan(db: Database, plan_id: str, *, tenant: str = "default") -> CorePlan | None:
    """The stored plan row (for the approval prompt and the CLI), or None."""
    with db.session() as session:
        return _load(session, plan_id, tenant, lock=False)


def mark_approval_asked(db: Database, plan_id: str, *, tenant: str = "default") -> None:
    """Record when the client was asked, so a late multi-round-trip answer counts as no."""
    with db.session(write=True) as session:
        row = _load(session, plan_id, tenant, lock=True)
        if row is not None:
            row.approval_asked_at = utcnow()
            session.add(row)


def approval_message(row: CorePlan) -> str:
    """The question shown to the person (deterministic: multi-round-trip re-renders must match)."""
    plan = _to_plan(row)
    lines = [
        f"Approve critical action {plan.tool} (plan {plan.plan_id})?",
        plan.summary,
        f"Affects {plan.affected_count} record(s); {'reversible' if plan.reversible else 'NOT reversible'}.",
    ]
    if plan.money is not None:
        lines.append(f"Money: {plan.money.display()}.")
    lines.extend(plan.notes)
    return "\n".join(lines)


# --------------------------------------------------------------------------- spend caps


def reserve_spend(
    session: Session,
    *,
    scope: str,
    campaign: str | None,
    amount: Money,
    settings: Settings,
    now: datetime | None = None,
) -> None:
    """Reserve `amount` against the per-campaign and rolling 24 h caps, in the caller's transaction.

    Caps are in minor units of the amount's currency (sums never mix currencies). Raises
    `ApprovalRequired` (spending above a cap is a critical action) when a cap would be exceeded; the
    reservation is then not recorded. `now` is injectable for tests of the rolling window.
    """
    if amount.amount_minor <= 0:
        raise ValidationFailed("A spend reservation must be a positive amount.", field="amount")
    if session.get_bind().dialect.name == "postgresql":
        # Concurrent reservations read-then-insert; serialise them so two cannot both fit under a cap.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SPEND_LOCK_KEY})
    now = now or utcnow()
    currency = amount.currency.upper()
    base = _spent_query(settings.tenant, currency)
    window_start = now - timedelta(hours=24)
    spent_24h = int(
        session.exec(
            base.where(CoreSpendLedger.created_at > window_start, CoreSpendLedger.created_at <= now)
        ).one()
    )
    _check_cap("rolling 24 h", spent_24h, amount, settings.spend_cap_24h_minor)
    if campaign is not None:
        spent_campaign = int(session.exec(base.where(CoreSpendLedger.campaign == campaign)).one())
        _check_cap(f"campaign '{campaign}'", spent_campaign, amount, settings.spend_cap_campaign_minor)
    session.add(
        CoreSpendLedger(
            tenant=settings.tenant,
            scope=scope,
            campaign=campaign,
            amount_minor=amount.amount_minor,
            currency=currency,
            created_at=now,
        )
    )
    session.flush()


def _spent_query(tenant: str, currency: str) -> Any:
    return select(func.coalesce(func.sum(CoreSpendLedger.amount_minor), 0)).where(
        CoreSpendLedger.tenant == tenant, CoreSpendLedger.currency == currency
    )


def _check_cap(name: str, spent: int, amount: Money, cap: int) -> None:
    if spent + amount.amount_minor <= cap:
        return
    cur = amount.currency.upper()
    raise ApprovalRequired(
        f"Spend cap {name} would be exceeded: already {Money(amount_minor=spent, currency=cur).display()}"
        f" + {amount.display()} > cap {Money(amount_minor=cap, currency=cur).display()}.",
        hint="Spending above a cap needs an admin: raise REVOPS_SPEND_CAP_24H_MINOR or "
        "REVOPS_SPEND_CAP_CAMPAIGN_MINOR, or spend less; nothing was reserved.",
        details={"cap": name, "spent_minor": spent, "amount_minor": amount.amount_minor, "cap_minor": cap},
    )


def spend_total(session: Session, *, settings: Settings, currency: str, campaign: str | None = None) -> int:
    """Sum reserved so far (per campaign when given), in minor units of `currency`."""
    query = _spent_query(settings.tenant, currency.upper())
    if campaign is not None:
        query = query.where(CoreSpendLedger.campaign == campaign)
    return int(session.exec(query).one())


# --------------------------------------------------------------------------- protocol wiring

APPROVAL_PARAM = "revops_approval"
"""Name of the resolver-filled parameter `server._wrap` adds to critical tools (never client-visible)."""
_INPUT_REQUIRED_VERSION = "2026-07-28"  # first revision that elicits via multi-round-trip results


def approval_parameter(runtime: Runtime, tool: ToolDef) -> inspect.Parameter:
    """The extra wrapper parameter that asks the client to approve a critical plan.

    Its resolver asks only when `confirm` names a pending, unapproved plan of this tool and this actor.
    Legacy protocol: it elicits directly (so it can time out). 2026-07-28: it returns an `Elicit`
    marker, the SDK turns it into a multi-round-trip result, and the answer comes back next round.
    """
    from mcp.server.elicitation import ElicitationResult
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver.resolve import Elicit, Resolve
    from mcp_types.version import is_version_at_least

    from revops_core.errors import RevOpsError
    from revops_core.server import TIER_ROLE
    from revops_core.settings import ROLE_RANK

    needed_rank = ROLE_RANK[TIER_ROLE[tool.tier]]

    async def ask_approval(ctx: Context, confirm: str | None) -> ApprovalAnswer | Elicit[ApprovalForm]:
        if confirm is None:
            return ApprovalAnswer("not_asked")
        tenant = runtime.settings.tenant
        row = await anyio.to_thread.run_sync(lambda: get_plan(runtime.db, confirm, tenant=tenant))
        if (
            row is None
            or row.tool != tool.name
            or not row.requires_approval
            or row.approved_at is not None
            or row.used_at is not None
            or utcnow() >= row.expires_at
        ):
            return ApprovalAnswer("not_asked")  # require_confirmation reports the precise problem
        try:
            actor, role = await anyio.to_thread.run_sync(runtime.resolve_actor, ctx)
        except RevOpsError:
            return ApprovalAnswer("not_asked")
        if actor != row.actor or ROLE_RANK[role] < needed_rank:
            return ApprovalAnswer("not_asked")  # never prompt a person for a call that will be refused
        caps = ctx.client_capabilities
        elicitation = caps.elicitation if caps is not None else None
        if elicitation is None or (elicitation.form is None and elicitation.url is not None):
            return ApprovalAnswer("unsupported")
        message = approval_message(row)
        version = ctx.protocol_version
        if version is not None and is_version_at_least(version, _INPUT_REQUIRED_VERSION):
            if ctx.input_responses is None:  # first round: the clock of the timeout starts now
                await anyio.to_thread.run_sync(
                    lambda: mark_approval_asked(runtime.db, confirm, tenant=tenant)
                )
            return Elicit(message, ApprovalForm)
        return await _elicit_legacy(ctx, message, runtime.settings.approval_timeout_seconds)

    ask_approval.__qualname__ = f"ask_approval[{tool.name}]"
    # Real objects, not strings: the SDK reads these hints to find the Context and `confirm`.
    ask_approval.__annotations__ = {
        "ctx": Context,
        "confirm": str | None,
        "return": ApprovalAnswer | Elicit[ApprovalForm],
    }
    annotation = Annotated[ElicitationResult[ApprovalForm], Resolve(ask_approval)]
    return inspect.Parameter(APPROVAL_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


async def _elicit_legacy(ctx: Any, message: str, wait_seconds: float) -> ApprovalAnswer:
    from mcp.server.elicitation import AcceptedElicitation, DeclinedElicitation
    from mcp.shared.exceptions import MCPError

    with anyio.move_on_after(wait_seconds):
        try:
            result = await ctx.elicit(message, ApprovalForm)
        except (ValueError, MCPError):  # a malformed answer or a client error is not consent
            return ApprovalAnswer("declined", "elicitation")
        if isinstance(result, AcceptedElicitation):
            return ApprovalAnswer("approved" if result.data.approve else "declined", "elicitation")
        return ApprovalAnswer(
            "declined" if isinstance(result, DeclinedElicitation) else "cancelled", "elicitation"
        )
    return ApprovalAnswer("timeout", "elicitation")  # no answer in time counts as no


def approval_from(outcome: Any) -> ApprovalAnswer:
    """Normalise the resolver's outcome (either protocol era) into one `ApprovalAnswer`."""
    from mcp.server.elicitation import AcceptedElicitation, DeclinedElicitation

    if isinstance(outcome, AcceptedElicitation):
        data = outcome.data
        if isinstance(data, ApprovalAnswer):
            return data
        if isinstance(data, ApprovalForm):
            return ApprovalAnswer("approved" if data.approve else "declined", "input_required")
        return ApprovalAnswer("not_asked")
    if isinstance(outcome, DeclinedElicitation):
        return ApprovalAnswer("declined", "input_required")
    if outcome is None:
        return ApprovalAnswer("not_asked")
    return ApprovalAnswer("cancelled", "input_required")
