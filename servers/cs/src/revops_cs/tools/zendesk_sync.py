"""CS toolset `support`: import Zendesk tickets (the order and guarantees are in services/zendesk_sync.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from revops_core.params import Count
from revops_core.server import Call
from revops_cs.services import zendesk_sync
from revops_cs.services.zendesk_sync import SyncResult
from revops_cs.toolsets import support as toolset


@toolset.tool(
    tier="write", idempotent=True, open_world=True, title="Sync Zendesk tickets", target="zendesk:tickets"
)
async def sync_zendesk_tickets(
    call: Call,
    restart: Annotated[bool, Field(description="Ignore the stored cursor and export from `since`.")] = False,
    since: Annotated[date | None, Field(description="Start date for a first/restarted export.")] = None,
    max_pages: Annotated[int, Count("Stop after this many pages.", ge=1, le=100)] = 10,
) -> SyncResult:
    """Import Zendesk tickets incrementally (resumable cursor); client = external_ids["zendesk"] org id."""
    return await zendesk_sync.sync_tickets(call, restart=restart, since=since, max_pages=max_pages)
