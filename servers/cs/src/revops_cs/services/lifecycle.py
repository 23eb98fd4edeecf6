"""Lifecycle stage rules: which transitions are allowed, and the history every change writes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from revops_core.errors import ValidationFailed
from revops_cs.models.clients import STAGES, CsClient, CsStageChange

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
