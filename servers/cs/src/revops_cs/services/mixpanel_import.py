"""Mixpanel: raw exported events stored as usage events (mapped to clients, deduplicated by
`$insert_id`), and client data pushed to Mixpanel people profiles.

Everything an export returns is read first and stored in one transaction: a broken stream stores
nothing. Profiles are read in a short transaction of their own, so no write lock is held while
Mixpanel is called.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field
from sqlmodel import Session, col, select

from revops_core.money import money
from revops_cs.models.clients import CsClient
from revops_cs.output import Out
from revops_cs.services.email_send import live_contacts
from revops_cs.services.health import latest_snapshots
from revops_cs.services.usage import UsageEventIn, ingest_usage_events
from revops_cs.vendors import mixpanel

if TYPE_CHECKING:
    from revops_core.server import Call

T = TypeVar("T")


class MixpanelResult(Out):
    action: str = Field(description="Action done.")
    lines: int = Field(description="import: export lines read.")
    inserted: int = Field(description="import: usage events stored.")
    duplicates: int = Field(description="import: skipped, $insert_id already stored.")
    unmapped: dict[str, int] = Field(description="import: events not stored, by reason.")
    profiles_updated: int = Field(description="push_profiles: profiles Mixpanel accepted.")


def client_keys(session: Session) -> dict[str, int]:
    """Mixpanel client key → client id: `external_ids["mixpanel"]`, else the client id itself."""
    keys: dict[str, int] = {}
    for cid, ext in session.exec(
        select(CsClient.id, CsClient.external_ids).where(col(CsClient.deleted_at).is_(None))
    ):
        keys[str(cid)] = cid or 0
        try:
            mapped = json.loads(ext or "{}").get("mixpanel")
        except ValueError:
            mapped = None
        if mapped is not None:
            keys[str(mapped)] = cid or 0
    return keys


def store_events(call: Call, events: list[mixpanel.ExportedEvent]) -> MixpanelResult:
    """Map exported events to clients and ingest them in the call's transaction (dedupe by $insert_id)."""
    keys = client_keys(call.db)
    unmapped: dict[str, int] = {}
    rows = []
    for e in events:
        client_id = keys.get(e.client_key) if e.client_key is not None else None
        if client_id is None or not e.user_ref:
            if e.client_key is None:
                reason = "no client property"
            else:
                reason = "unknown client" if client_id is None else "no distinct_id"
            unmapped[reason] = unmapped.get(reason, 0) + 1
            continue
        rows.append(
            UsageEventIn(
                client_id=client_id,
                user_ref=e.user_ref,
                event=e.event,
                feature=e.feature,
                occurred_at=e.occurred_at,
                external_id=e.insert_id,
            )
        )
    report = ingest_usage_events(call.db, rows, source="mixpanel")
    call.target = "mixpanel:export"
    call.audit_details.update(inserted=report.inserted, duplicates=report.duplicates)
    return MixpanelResult(
        action="import",
        lines=len(events),
        inserted=report.inserted,
        duplicates=report.duplicates,
        unmapped=unmapped,
        profiles_updated=0,
    )


def profile_updates(session: Session, client_ids: list[int] | None) -> list[tuple[str, dict[str, Any]]]:
    """`$set` properties per contact (distinct_id = email) from the client's stored data."""
    query = select(CsClient).where(col(CsClient.deleted_at).is_(None))
    if client_ids:
        query = query.where(col(CsClient.id).in_(client_ids))
    clients = list(session.exec(query.order_by(col(CsClient.id))))
    snaps = latest_snapshots(session, query.with_only_columns(col(CsClient.id)))
    updates = []
    for client in clients:
        snap = snaps.get(client.id or 0)
        props = {
            "client_id": client.id,
            "client_name": client.name,
            "tier": client.tier,
            "stage": client.stage,
            "arr": money(client.arr_minor, client.currency).display(),
            "renewal_date": client.renewal_date.isoformat() if client.renewal_date else None,
            "health_band": snap.band if snap else None,
        }
        for contact in live_contacts(session, client, None):
            updates.append((contact.email, props))
    return updates


# --------------------------------------------------------------------------- jobs


def _with_client(
    call: Call, creds: mixpanel.MixpanelCredentials, work: Callable[[mixpanel.MixpanelClient], Awaitable[T]]
) -> T:
    """Run `work` with a Mixpanel client (options from the vendor seam) from a synchronous body."""

    async def run() -> T:
        options = call.vendor_options(mixpanel.SPEC.provider)
        async with mixpanel.MixpanelClient(creds, call.settings, **options) as mp:
            return await work(mp)

    return call.run_async(run)


def import_events(
    call: Call, creds: mixpanel.MixpanelCredentials, first: date, last: date, client_property: str
) -> MixpanelResult:
    """Export the days `first`..`last` and store them as usage events (progress every 1000 lines)."""

    async def read(mp: mixpanel.MixpanelClient) -> list[mixpanel.ExportedEvent]:
        events: list[mixpanel.ExportedEvent] = []
        async for line in mp.export(first, last):
            events.append(mixpanel.parse_line(line, len(events) + 1, client_property))
            if call.ctx is not None and len(events) % 1000 == 0:
                await call.ctx.report_progress(len(events), None, f"{len(events)} events read")
        return events

    events = _with_client(call, creds, read)
    result = store_events(call, events)
    call.progress(len(events), len(events), f"{result.inserted} events stored")
    return result


def push_profiles(
    call: Call, creds: mixpanel.MixpanelCredentials, client_ids: list[int] | None
) -> MixpanelResult:
    """`$set` each live contact's profile (distinct_id = e-mail) from its client's stored data."""
    # A short read transaction of its own: no write lock is held while Mixpanel is called.
    with call.runtime.db.session() as session:
        updates = profile_updates(session, client_ids)
    done = _with_client(call, creds, lambda mp: mp.set_profiles(updates))
    call.target = "mixpanel:profiles"
    return MixpanelResult(
        action="push_profiles", lines=0, inserted=0, duplicates=0, unmapped={}, profiles_updated=done
    )
