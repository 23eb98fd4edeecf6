"""CS toolset `health`: a client's lifecycle stage, its history and rule-checked moves."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.params import MultiLine
from revops_core.server import Call
from revops_cs.models.clients import Stage
from revops_cs.params import ClientId
from revops_cs.services import clients, lifecycle
from revops_cs.toolsets import segments as toolset


@toolset.tool(tier="read", title="Lifecycle history", replaces="manage_lifecycle_stages action=history")
def get_lifecycle_history(call: Call, client_id: ClientId) -> lifecycle.Lifecycle:
    """A client's stage, the stages it may move to next, and every stage change, newest first."""
    return lifecycle.history(call.db, clients.get_client(call.db, client_id))


@toolset.tool(
    tier="write",
    idempotent=False,
    title="Move a client to a stage",
    target="cs_client:{client_id}",
    replaces="manage_lifecycle_stages action=transition",
)
def move_lifecycle_stage(
    call: Call,
    client_id: ClientId,
    to_stage: Annotated[Stage, Field(description="Target stage.")],
    reason: Annotated[
        str | None, Field(max_length=500, description="Why; required for churned."), MultiLine
    ] = None,
) -> lifecycle.Lifecycle:
    """Move a client to another stage if the rules allow it (churn needs a reason); the move is recorded."""
    client = clients.get_client(call.db, client_id)
    lifecycle.transition(call.db, client, to_stage, actor=call.actor, reason=reason)
    return lifecycle.history(call.db, client)
