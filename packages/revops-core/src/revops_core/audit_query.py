"""`query_audit_log`: the audit log of one server's tool calls, read through the protocol.

Scoped to the caller's tenant and to actions named `<server>.<tool>` (what the tool wrapper
writes), so a server shows who did what through it and nothing of the vault, keys or other
servers. It is a read: `revops audit query` remains the operator's unscoped view.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from revops_core.audit import AuditRecord, query
from revops_core.paging import Page
from revops_core.params import Cursor, Limit, SingleLine

if TYPE_CHECKING:
    from revops_core.server import Call, Toolset

Actor = Annotated[
    str | None, Field(max_length=200, description="Exact actor (a key name or user)."), SingleLine
]
ToolName = Annotated[
    str | None,
    Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*$", description="Tool name, e.g. update_deal."),
]
Target = Annotated[
    str | None, Field(max_length=200, description="Exact target, e.g. sales_deal:42."), SingleLine
]
Since = Annotated[datetime | None, Field(description="From this instant (inclusive, with offset).")]
Until = Annotated[datetime | None, Field(description="Before this instant (exclusive, with offset).")]


def register_audit_query(meta: Toolset, server_name: str) -> None:
    @meta.tool(tier="read", title="Query the audit log")
    def query_audit_log(
        call: Call,
        actor: Actor = None,
        tool_name: ToolName = None,
        target: Target = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[AuditRecord]:
        """Who did what through this server, oldest first, filtered by actor, tool, target and time."""
        return query(
            call.runtime.db,
            actor=actor,
            action=f"{server_name}.{tool_name}" if tool_name else None,
            target=target,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            tenant=call.tenant,
            action_prefix=f"{server_name}.",
        )
