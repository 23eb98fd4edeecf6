"""HubSpot ↔ Sales sync, both ways, incremental and resumable.

One run, in order: pipelines and owners (when deals or notes are synced) → per object (companies,
contacts, deals, so associations resolve) the changed records (search, `lastmodifieddate ≥ since`,
oldest first, paged with `after`) and the archived ones → notes and tasks (one way, `hubspot_notes`,
`hubspot_tasks`) → then local changes out (batch create / update / archive).

Transactions: every vendor page is fetched first and then written, with the stream's cursor, in one
short write transaction of its own. A failure while fetching or writing page N leaves pages 1…N-1
committed with their cursor and nothing of page N; the next run resumes at page N (records are
matched by their HubSpot id, so a page read twice never duplicates rows). No transaction is open
during network I/O. Pushed records are written locally (link + synced values) after HubSpot accepted
the batch; if that local write fails, the next pull brings the records back by their HubSpot id.

Conflicts: see `sync_settings` (vendor_wins / local_wins / newest_wins, per field).

Known limits: pipelines and stages come from HubSpot only (never pushed); restoring a locally archived
record does not restore it at HubSpot; a batch create that timed out is not resent (its outcome is
unknown) — the next pull links companies (by domain) and contacts (by e-mail) HubSpot did create, but a
deal or a company without a domain could then be created twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlmodel import Session

from revops_core.db import utcnow
from revops_core.server import Call
from revops_sales.models.sync import SalesSyncLink
from revops_sales.services import hubspot_notes, hubspot_tasks, sync_pull, sync_records, sync_settings
from revops_sales.services.sync_pull import Dialect, RunContext, SyncRunOut
from revops_sales.services.sync_records import COMPANY, STAGE, Stats
from revops_sales.services.sync_settings import SyncSettingsOut
from revops_sales.vendors import hubspot

VENDOR = "hubspot"
ONE_WAY = ("notes", "tasks")  # HubSpot → local only
T = TypeVar("T")
DIALECT = Dialect(
    vendor=VENDOR,
    parse_time=hubspot.parse_time,
    # Search results carry `updatedAt`; the modified property is the fallback for other reads.
    record_time=lambda obj, r: hubspot.parse_time(
        r.get("updatedAt") or hubspot.properties_of(r).get(hubspot.MODIFIED_PROPERTY[obj])
    ),
    format_date=hubspot.format_date,
    number=str,
    cleared="",
)
__all__ = ["VENDOR", "SyncRunOut", "run"]


# --------------------------------------------------------------------------- pull: one page


async def _walk_changes(
    call: Call,
    hs: hubspot.HubSpotClient,
    ctx: RunContext,
    obj: str,
    wanted: list[str],
    extra: Callable[[hubspot.Page], Awaitable[Any]],
    store: Callable[..., Stats],
    stats: Stats,
) -> None:
    """Page through records modified since the stream's cursor; each page (with what `extra` fetched
    for it) is stored by `store(session, page, extra, advance)` in one transaction with its cursor."""
    since, after, high = await call.in_thread(partial(sync_pull.read_cursor, ctx, obj))
    for _ in range(ctx.max_pages):
        page = await hs.search(obj, since=since, after=after, properties=wanted)
        more = await extra(page)
        times = [t for r in page.records if (t := hubspot.parse_time(r.get("updatedAt")))]
        high = max([*times, *([high] if high else [])], default=high)
        window_full = (
            page.after is not None
            and page.after.isdigit()
            and int(page.after) >= hubspot.SEARCH_WINDOW - hubspot.PAGE_SIZE
        )
        if page.after is None or window_full:
            # Query done (or at HubSpot's 10 000-result window): the next one starts at the newest seen.
            since, after, high = (high or since), None, None
        else:
            after = page.after
        advance = sync_pull.advance(ctx, obj, since=since, after=after, high_water=high)
        stats.add(await call.in_thread(ctx.write(store, page, more, advance)))
        if after is None and not window_full:
            break
    else:
        ctx.complete = False


async def _pull(
    call: Call, hs: hubspot.HubSpotClient, ctx: RunContext, obj: str, settings: SyncSettingsOut, stats: Stats
) -> None:
    """Pull one object into `stats` (which keeps the committed pages' counts if a later page fails)."""
    fmap = sync_settings.mapped(settings)
    wanted = [*fmap.values(), *(("pipeline", "dealstage") if obj == "deals" else ())]

    async def companies_of(page: hubspot.Page) -> dict[str, list[str]]:
        if obj == "companies":
            return {}
        return await hs.associations(obj, "companies", [str(r["id"]) for r in page.records])

    def store(session: Session, page: hubspot.Page, extra: Any, advance: Callable[[Session], None]) -> Stats:
        return sync_pull.store_page(session, ctx, obj, settings, page, extra, advance)

    await _walk_changes(call, hs, ctx, obj, wanted, companies_of, store, stats)
    stream = f"{obj}:archived"
    _, archived_after, _ = await call.in_thread(partial(sync_pull.read_cursor, ctx, stream))
    for _ in range(ctx.max_pages):
        page = await hs.archived(obj, after=archived_after)
        archived_after = page.after
        advance = sync_pull.advance(ctx, stream, after=archived_after)
        stats.add(await call.in_thread(ctx.write(sync_pull.store_archived, ctx, obj, page, advance)))
        if archived_after is None:
            break
    else:
        ctx.complete = False


# --------------------------------------------------------------------------- pipelines and owners


def _owners(ctx: RunContext, owners: list[dict[str, Any]]) -> None:
    for owner in owners:
        oid = str(owner.get("id"))
        full = " ".join(str(owner.get(k) or "").strip() for k in ("firstName", "lastName")).strip()
        label = str(owner.get("email") or full or oid).strip()[:200]
        ctx.owner_label[oid] = label
        ctx.owner_id.setdefault(label, oid)


# --------------------------------------------------------------------------- push


@dataclass
class _Push:
    creates: list[tuple[int, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )  # id, input, values
    updates: list[tuple[int, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )  # link id, input, base
    archives: list[tuple[int, str]] = field(default_factory=list)  # link id, vendor id
    # link id, vendor id, old and new vendor company id, new local company id
    relinks: list[tuple[int, str, str | None, str | None, int | None]] = field(default_factory=list)


def _plan_push(session: Session, ctx: RunContext, obj: str, settings: SyncSettingsOut, stats: Stats) -> _Push:
    fmap = sync_settings.mapped(settings)
    fields = sync_pull.fields_of(obj, fmap)
    stage_keys = {v: k for k, v in sync_records.local_ids(session, ctx.tenant, VENDOR, "stage").items()}
    company_keys = {v: k for k, v in sync_records.local_ids(session, ctx.tenant, VENDOR, "companies").items()}
    plan = _Push()
    for row in sync_records.unlinked_rows(session, ctx.tenant, VENDOR, obj):
        values = sync_records.local_values(obj, row, fields)
        props = sync_pull.to_vendor(values, fmap, getattr(row, "currency", "USD"), ctx)
        entry: dict[str, Any] = {"properties": props, "objectWriteTraceId": f"revops-{obj}-{row.id}"}
        if obj == "deals":
            key = stage_keys.get(row.stage_id)
            if key is None:
                stats.error(f"deal {row.id}: its pipeline is not in HubSpot; not pushed")
                continue
            props["pipeline"], props["dealstage"] = key.split(":", 1)
        company = company_keys.get(values[COMPANY]) if values.get(COMPANY) is not None else None
        if company is not None:
            kind = {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": hubspot.ASSOCIATION_TYPE[obj],
            }
            entry["associations"] = [{"to": {"id": company}, "types": [kind]}]
        plan.creates.append((int(row.id), entry, values))
    for row, lnk in sync_records.linked_rows(session, ctx.tenant, VENDOR, obj):
        if row.deleted_at is not None:
            plan.archives.append((int(lnk.id or 0), lnk.vendor_id))
            continue
        values = sync_records.local_values(obj, row, fields)
        base = json.loads(lnk.synced_values)
        if COMPANY in values and values[COMPANY] != base.get(COMPANY):
            old, new = company_keys.get(base.get(COMPANY)), company_keys.get(values[COMPANY])
            if values[COMPANY] is not None and new is None:
                stats.error(f"{obj} {row.id}: its company is not in HubSpot; association not pushed")
            else:
                plan.relinks.append((int(lnk.id or 0), lnk.vendor_id, old, new, values[COMPANY]))
        changed = {k: v for k, v in values.items() if k != COMPANY and v != base.get(k)}
        if not changed:
            continue
        props = sync_pull.to_vendor(changed, fmap, getattr(row, "currency", "USD"), ctx)
        if STAGE in changed and stage_keys.get(changed[STAGE]):
            props["pipeline"], props["dealstage"] = stage_keys[changed[STAGE]].split(":", 1)
        if props:
            plan.updates.append(
                (int(lnk.id or 0), {"id": lnk.vendor_id, "properties": props}, {**base, **changed})
            )
    return plan


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), hubspot.PAGE_SIZE):
        yield items[start : start + hubspot.PAGE_SIZE]


def _store_created(
    session: Session,
    ctx: RunContext,
    obj: str,
    batch: list[tuple[int, dict[str, Any], dict[str, Any]]],
    results: list[dict[str, Any]],
) -> Stats:
    stats = Stats()
    by_trace = {str(r.get("objectWriteTraceId")): r for r in results}
    for local_id, entry, values in batch:
        result = by_trace.get(entry["objectWriteTraceId"])
        if result is None:
            stats.error(f"{obj} {local_id}: HubSpot did not create it")
            continue
        lnk = sync_records.link(session, ctx.tenant, VENDOR, obj, local_id, str(result["id"]), values)
        lnk.vendor_updated_at = hubspot.parse_time(result.get("updatedAt"))
        stats.pushed_created += 1
    return stats


def _store_relinked(
    session: Session, batch: list[tuple[int, str, str | None, str | None, int | None]]
) -> Stats:
    for link_id, _, _, _, company in batch:
        lnk = session.get(SalesSyncLink, link_id)
        if lnk is not None:
            # Read again: the batch update above may have rewritten the other synced values.
            lnk.synced_values = json.dumps(
                {**json.loads(lnk.synced_values), COMPANY: company}, sort_keys=True
            )
            session.add(lnk)
    return Stats(pushed_updated=len(batch))


def _store_archived_out(session: Session, batch: list[tuple[int, str]]) -> Stats:
    now = utcnow()
    for link_id, _ in batch:
        lnk = session.get(SalesSyncLink, link_id)
        if lnk is not None:
            lnk.archived_at = now
            session.add(lnk)
    return Stats(pushed_archived=len(batch))


async def _push(
    call: Call, hs: hubspot.HubSpotClient, ctx: RunContext, obj: str, settings: SyncSettingsOut, stats: Stats
) -> None:

    def plan_in_read() -> _Push:
        with ctx.runtime.db.session() as session:
            return _plan_push(session, ctx, obj, settings, stats)

    plan = await call.in_thread(plan_in_read)
    for creates in _chunks(plan.creates):
        created = await hs.batch_create(obj, [entry for _, entry, _ in creates])
        stats.add(await call.in_thread(ctx.write(_store_created, ctx, obj, creates, created)))
    for updates in _chunks(plan.updates):
        updated = await hs.batch_update(obj, [entry for _, entry, _ in updates])
        times = {str(r["id"]): hubspot.parse_time(r.get("updatedAt")) for r in updated}
        stats.add(await call.in_thread(ctx.write(sync_pull.store_updated, updates, times)))
    for relinks in _chunks(plan.relinks):
        gone = [(vid, old) for _, vid, old, _, _ in relinks if old is not None]
        if gone:
            await hs.dissociate(obj, "companies", gone)
        made = [(vid, new) for _, vid, _, new, _ in relinks if new is not None]
        if made:
            await hs.associate(obj, "companies", made)
        stats.add(await call.in_thread(ctx.write(_store_relinked, relinks)))
    for archives in _chunks(plan.archives):
        await hs.batch_archive(obj, [vid for _, vid in archives])
        stats.add(await call.in_thread(ctx.write(_store_archived_out, archives)))


# --------------------------------------------------------------------------- the run


async def _pull_notes(call: Call, hs: hubspot.HubSpotClient, ctx: RunContext, stats: Stats) -> None:
    """HubSpot notes in (one way; see `hubspot_notes`)."""

    async def subjects(page: hubspot.Page) -> dict[str, dict[str, list[str]]]:
        ids = [str(r["id"]) for r in page.records]
        return {obj: await hs.associations("notes", obj, ids) for obj in hubspot_notes.SUBJECTS}

    def store(session: Session, page: hubspot.Page, extra: Any, advance: Callable[[Session], None]) -> Stats:
        return hubspot_notes.store_page(
            session,
            tenant=ctx.tenant,
            vendor=VENDOR,
            owner_label=ctx.owner_label,
            page=page,
            targets=extra,
            advance=advance,
        )

    await _walk_changes(call, hs, ctx, "notes", hubspot_notes.PROPERTIES, subjects, store, stats)


async def _pull_tasks(call: Call, hs: hubspot.HubSpotClient, ctx: RunContext, stats: Stats) -> None:
    """HubSpot tasks in (one way; see `hubspot_tasks`)."""

    async def deals_of(page: hubspot.Page) -> dict[str, list[str]]:
        return await hs.associations("tasks", "deals", [str(r["id"]) for r in page.records])

    def store(session: Session, page: hubspot.Page, extra: Any, advance: Callable[[Session], None]) -> Stats:
        return hubspot_tasks.store_page(
            session,
            tenant=ctx.tenant,
            vendor=VENDOR,
            owner_label=ctx.owner_label,
            page=page,
            deals_of=extra,
            advance=advance,
        )

    await _walk_changes(call, hs, ctx, "tasks", hubspot_tasks.PROPERTIES, deals_of, store, stats)


async def run(call: Call, *, objects: list[str], max_pages: int) -> SyncRunOut:
    """Pull then push the given objects (in dependency order); see the module docstring."""
    credentials = await call.in_thread(partial(hubspot.require_credentials, call.runtime))
    ordered: list[str] = [o for o in (*hubspot.OBJECT_TYPES, *ONE_WAY) if o in objects]
    ctx = RunContext(call.runtime, call.tenant, call.actor, max_pages, DIALECT)
    settings = await call.in_thread(
        partial(sync_pull.load_settings, call.runtime, call.tenant, VENDOR, ordered)
    )

    async def body(stats: Stats) -> None:
        async with hubspot.HubSpotClient(
            credentials, call.runtime, **call.vendor_options(hubspot.SPEC.provider)
        ) as hs:
            if "deals" in ordered:
                remote = await hs.pipelines("deals")
                stats.add(await call.in_thread(ctx.write(sync_pull.store_pipelines, ctx, remote)))
            if {"deals", *ONE_WAY} & set(ordered):
                _owners(ctx, await hs.owners())
            for obj, chosen in sync_pull.flowing(settings, "pull"):
                await _pull(call, hs, ctx, obj, chosen, stats)
            if "notes" in ordered:
                await _pull_notes(call, hs, ctx, stats)
            if "tasks" in ordered:
                await _pull_tasks(call, hs, ctx, stats)
            for obj, chosen in sync_pull.flowing(settings, "push"):
                await _push(call, hs, ctx, obj, chosen, stats)

    return await sync_pull.recorded_run(call, ctx, ordered, body)
