"""Reading the audit log: filtered, paged queries and JSON-lines export (`revops audit query` /
`export`), and `query_audit_log`, the same read through the protocol for one server's tool calls.

The tool is scoped to the caller's tenant and to actions named `<server>.<tool>` (what the tool
wrapper writes), so a server shows who did what through it and nothing of the vault, keys or other
servers; `revops audit query` remains the operator's unscoped view.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TextIO

from pydantic import BaseModel, Field
from sqlalchemy import and_, func
from sqlalchemy import select as sa_select

from revops_core.audit import _ROW_COLUMNS, _T, Row, read_snapshot, stream_rows
from revops_core.db import Database
from revops_core.errors import ValidationFailed
from revops_core.paging import MAX_LIMIT, Page, after_id, next_cursor
from revops_core.params import Cursor, Limit, SingleLine


class AuditRecord(BaseModel):
    """One audit entry as clients and exports see it."""

    seq: int = Field(description="Position in the chain.")
    tenant: str = Field(description="Tenant the entry belongs to.")
    ts: datetime = Field(description="When the entry was written (UTC).")
    actor: str = Field(description="Who did it.")
    action: str = Field(description="What was done (`server.tool` for tool calls).")
    target: str | None = Field(description="The record acted on, e.g. `cs_client:42`.")
    details: dict[str, Any] = Field(description="Redacted arguments and outcome details.")
    prev_hash: str = Field(description="Hash of the previous entry.")
    hash: str = Field(description="This entry's chain hash.")


def record_of(row: Row) -> AuditRecord:
    return AuditRecord(
        seq=row[0],
        tenant=row[1],
        ts=row[2],
        actor=row[3],
        action=row[4],
        target=row[5],
        details=json.loads(row[6]),
        prev_hash=row[7],
        hash=row[8],
    )


def jsonl_line(row: Row) -> str:
    """The export/archive form of a row: one JSON object; `details` nested as stored."""
    return record_of(row).model_dump_json() + "\n"


def _check_aware(value: datetime | None, field: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed(
            f"{field} has no timezone.", field=field, hint="Give an ISO timestamp with an offset, e.g. …Z."
        )


def _filters(
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
    action_prefix: str | None = None,
) -> list[Any]:
    _check_aware(since, "since")
    _check_aware(until, "until")
    if since is not None and until is not None and since > until:
        raise ValidationFailed("since is after until.", field="since", hint="Give since <= until.")
    conditions: list[Any] = []
    for column, value in (
        (_T.c.actor, actor),
        (_T.c.action, action),
        (_T.c.target, target),
        (_T.c.tenant, tenant),
    ):
        if value is not None:
            conditions.append(column == value)
    if action_prefix is not None:
        conditions.append(_T.c.action.startswith(action_prefix, autoescape=True))
    if since is not None:
        conditions.append(_T.c.ts >= since)
    if until is not None:
        conditions.append(_T.c.ts < until)
    return conditions


def query(
    db: Database,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    tenant: str | None = None,
    action_prefix: str | None = None,
) -> Page[AuditRecord]:
    """Entries matching every given filter, oldest first; `since` inclusive, `until` exclusive.

    `action_prefix` keeps one server's tool calls (`"sales."`); `tenant` one tenant's entries."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}.", field="limit", hint="Page with cursor instead."
        )
    conditions = _filters(
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        tenant=tenant,
        action_prefix=action_prefix,
    )
    after = after_id(cursor)
    with db.session() as s:
        total = s.execute(sa_select(func.count()).select_from(_T).where(*conditions)).scalar_one()
        rows = [
            tuple(r)
            for r in s.execute(
                sa_select(*_ROW_COLUMNS)
                .where(*conditions, _T.c.seq > after)
                .order_by(_T.c.seq)
                .limit(limit + 1)
            )
        ]
    records = [record_of(r) for r in rows]
    return Page[AuditRecord](
        items=records[:limit], next_cursor=next_cursor(records, limit, id_attr="seq"), total=int(total)
    )


def export_jsonl(
    db: Database, stream: TextIO, *, since: datetime | None = None, until: datetime | None = None
) -> int:
    """Write entries (oldest first, `since` inclusive, `until` exclusive) as JSON lines; returns the count."""
    conditions = _filters(since=since, until=until)
    written = 0
    with read_snapshot(db) as conn:
        for row in stream_rows(conn, where=and_(*conditions) if conditions else None):
            stream.write(jsonl_line(row))
            written += 1
    return written


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
