"""Sales tools: bulk archive (plan → confirm; approval above the configured size) and restore."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from revops_core.params import Confirm, Ids, IdValue
from revops_core.plans import Planned, plan_or_run
from revops_core.server import Call
from revops_sales.services import archive
from revops_sales.toolsets import crm as toolset

EntityParam = Annotated[archive.Entity, Field(description="company, contact, deal or lead.")]
RecordIds = Annotated[list[IdValue], Ids("record", max_items=1000)]


@toolset.tool(tier="destructive", idempotent=False, title="Archive records")
def archive_records(
    call: Call, entity: EntityParam, ids: RecordIds, confirm: Confirm = None
) -> Planned[archive.ArchiveOut]:
    """Archive (soft-delete) records: plan → confirm; above the configured size a person also
    approves (`revops approve <plan_id>`)."""
    wanted = sorted(set(ids))
    preview, fingerprint = archive.plan(
        call.db, call.tenant, entity, wanted, threshold=call.settings.bulk_approval_threshold
    )
    return plan_or_run(
        call,
        confirm=confirm,
        preview=preview,
        fingerprint=fingerprint,
        run=lambda: archive.set_archived(call.db, call.tenant, entity, wanted, archived=True),
    )


@toolset.tool(tier="write", idempotent=True, title="Restore archived records")
def restore_records(call: Call, entity: EntityParam, ids: RecordIds) -> archive.ArchiveOut:
    """Bring archived records back into lists and searches."""
    return archive.set_archived(call.db, call.tenant, entity, sorted(set(ids)), archived=False)
