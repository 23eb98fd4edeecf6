"""Lifecycle stage rules: which transitions are allowed, the history every change writes, and reading it."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.errors import ValidationFailed
from revops_cs.models.clients import STAGES, CsClient, CsStageChange
from revops_cs.output import Out

# Why these: a client moves forward through onboarding → adoption → mature, enters the renewal window
# from adoption or mature, returns to mature once renewed, may churn from anywhere, and a churned
# client re-starts at onboarding (win-back). Anything else is almost always a data-entry mistake.
ALLOWED: dict[str, frozenset[str]] = {
    "onboarding": frozenset({"adoption", "churned"}),
    "adoption": frozenset({"mature", "renewal", "churned"}),
    "mature": frozenset({"renewal", "churned"}),
    "renewal": frozenset({"mature", "churned"}),
    "churned": frozenset({"onboarding"}),
}
REASON_REQUIRED: frozenset[str] = frozenset({"churned"})


def transition(
    session: Session,
    client: CsClient,
    to_stage: str,
    *,
    actor: str,
    reason: str | None,
    at: datetime | None = None,
) -> CsStageChange:
    """Move a client to `to_stage` if the rules allow it; write the history row. No commit."""
    if to_stage not in STAGES:
        raise ValidationFailed(
            f"Unknown stage '{to_stage}'.", field="stage", hint=f"Choose one of: {', '.join(STAGES)}."
        )
    if to_stage == client.stage:
        raise ValidationFailed(
            f"The client is already in stage '{to_stage}'.", field="stage", hint="Pick a different stage."
        )
    allowed = ALLOWED.get(client.stage, frozenset())
    if to_stage not in allowed:
        raise ValidationFailed(
            f"Transition {client.stage} → {to_stage} is not allowed.",
            field="stage",
            hint=f"From {client.stage} the client can move to: {', '.join(sorted(allowed))}.",
        )
    if to_stage in REASON_REQUIRED and not (reason and reason.strip()):
        raise ValidationFailed(
            f"A reason is required to move a client to '{to_stage}'.",
            field="reason",
            hint="Say why (e.g. 'budget cut', 'moved to competitor').",
        )
    when = at or datetime.now(UTC)
    change = CsStageChange(
        client_id=client.id or 0,
        from_stage=client.stage,
        to_stage=to_stage,
        reason=reason,
        actor=actor,
        at=when,
    )
    client.stage = to_stage
    client.stage_changed_at = when
    client.updated_at = when
    client.churned_at = when if to_stage == "churned" else None
    session.add(change)
    session.add(client)
    session.flush()
    return change


class StageChange(Out):
    at: datetime = Field(description="When (UTC).")
    from_stage: str | None = Field(description="Previous stage; null when registered.")
    to_stage: str = Field(description="New stage.")
    reason: str | None = Field(description="Why.")
    actor: str = Field(description="Who.")


class Lifecycle(Out):
    client_id: int = Field(description="Client id.")
    stage: str = Field(description="Current stage.")
    allowed_next: list[str] = Field(description="Allowed next stages.")
    history: list[StageChange] = Field(description="Stage changes, newest first.")


def history(session: Session, client: CsClient) -> Lifecycle:
    """The client's stage, where it may move next, and every recorded change, newest first."""
    rows = session.exec(
        select(CsStageChange)
        .where(CsStageChange.client_id == client.id)
        .order_by(col(CsStageChange.at).desc(), col(CsStageChange.id).desc())
    ).all()
    return Lifecycle(
        client_id=client.id or 0,
        stage=client.stage,
        allowed_next=sorted(ALLOWED.get(client.stage, ())),
        history=[StageChange.model_validate(r) for r in rows],
    )
