"""CS toolset `clients`: archive (soft-delete) and restore a client, through plan → confirm."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from revops_core.errors import ValidationFailed
from revops_core.guards import PlanPreview
from revops_core.params import Confirm
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_cs.params import ClientId
from revops_cs.services import clients
from revops_cs.toolsets import clients as toolset


@toolset.tool(
    tier="destructive", idempotent=False, title="Archive or restore a client", target="cs_client:{client_id}"
)
def archive_client(
    call: Call,
    client_id: ClientId,
    action: Annotated[
        Literal["archive", "restore"], Field(description="archive (soft delete) or restore.")
    ] = "archive",
    confirm: Confirm = None,
) -> Planned[clients.Archived]:
    """Archive (soft-delete) or restore a client: first call returns a plan; confirm=<plan_id> applies it."""
    client = clients.get_client(call.db, client_id, include_deleted=True)
    archived = client.deleted_at is not None
    if (action == "archive") == archived:
        raise ValidationFailed(
            f"Client {client_id} is {'already' if archived else 'not'} archived.",
            field="action",
            hint="Use action=restore for archived clients and action=archive for live ones.",
        )
    preview = PlanPreview(
        summary=f"{action.capitalize()} client {client.name} (id {client.id}).",
        affected_count=1,
        sample=[{"id": client.id, "name": client.name, "arr_minor": client.arr_minor, "stage": client.stage}],
        reversible=True,
        notes=["Archived clients are hidden from lists and analytics; their history is kept."]
        if action == "archive"
        else [],
    )
    return plan_or_run(
        call,
        confirm=confirm,
        preview=preview,
        fingerprint={"id": client.id, "deleted_at": client.deleted_at, "updated_at": client.updated_at},
        run=lambda: clients.set_archived(call.db, client, archived=action == "archive"),
    )
