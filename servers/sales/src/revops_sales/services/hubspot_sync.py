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
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar

from pydantic import Field
from sqlmodel import Session, select

from revops_core.db import utcnow
from revops_core.errors import InternalError, RevOpsError
from revops_core.money import exponent, to_minor
from revops_core.outputs import Out
from revops_core.server import Call, Runtime
from revops_sales.models.pipelines import SalesPipeline, SalesStage, StageKind
from revops_sales.models.sync import SalesSyncLink, SalesSyncRun
from revops_sales.services import hubspot_notes, hubspot_tasks, pipelines, sync_records, sync_settings
from revops_sales.services.sync_records import COMPANY, MODELS, STAGE, Stats
from revops_sales.services.sync_settings import SyncSettingsOut
from revops_sales.vendors import hubspot

VENDOR = "hubspot"
ONE_WAY = ("notes", "tasks")  # HubSpot → local only
TEXT_LIMITS = {
    "name": 200,
    "domain": 253,
    "industry": 100,
    "email": 320,
    "first_name": 100,
    "last_name": 100,
    "title": 150,
    "owner": 200,
}
T = TypeVar("T")


class SyncRunOut(Out):
    run_id: int = Field(description="Sync run id.")
    status: str = Field(description="ok, or partial when max_pages stopped a stream early.")
    objects: list[str] = Field(description="Objects synced.")
    pages: int = Field(description="Vendor pages committed.")
    pulled: int = Field(description="Vendor records read.")
    created: int = Field(description="Local rows created from vendor records.")
    updated: int = Field(description="Local rows changed from vendor records.")
    unchanged: int = Field(description="Vendor records already in sync.")
    archived: int = Field(description="Local rows archived because the vendor archived them.")
    pushed_created: int = Field(description="Vendor records created from local rows.")
    pushed_updated: int = Field(description="Vendor records updated from local changes.")
    pushed_archived: int = Field(description="Vendor records archived because the local row was.")
    conflicts: int = Field(description="Fields changed on both sides, resolved by the conflict policy.")
    skipped: int = Field(description="Records not synced (see errors).")
    errors: list[str] = Field(description="Per-record problems (first 20).")


@dataclass
class RunContext:
    runtime: Runtime
    tenant: str
    actor: str
    max_pages: int
    owner_label: dict[str, str] = field(default_factory=dict)  # owner id → email (or name)
    owner_id: dict[str, str] = field(default_factory=dict)  # email/name → owner id
    complete: bool = True

    def write(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        """`fn(session, *args)` in one write transaction of its own (for `call.in_thread`)."""

        def run() -> T:
            with self.runtime.db.session(write=True) as session:
                return fn(session, *args)

        return run


# --------------------------------------------------------------------------- vendor ↔ local values


def _text(raw: str | None, name: str) -> str | None:
    if raw is None:
        return None
    limit = TEXT_LIMITS.get(name)
    if limit is not None and len(raw) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return raw


def from_vendor(
    obj: str, props: dict[str, Any], fmap: dict[str, str], settings: SyncSettingsOut, ctx: RunContext
) -> dict[str, Any]:
    """The local representation of a vendor record's mapped properties; ValueError if unusable."""
    out: dict[str, Any] = {}
    currency = settings.default_currency
    if obj == "deals" and "currency" in fmap and props.get(fmap["currency"]):
        currency = str(props[fmap["currency"]]).strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    for local, prop in fmap.items():
        value = props.get(prop)
        raw = None if value is None or str(value).strip() == "" else str(value).strip()
        if local == "employees":
            out[local] = _whole(raw, local)
        elif local == "amount_minor":
            if raw is None:
                raise ValueError("the deal has no amount")
            try:
                out[local] = to_minor(Decimal(raw), currency)
            except InvalidOperation:
                raise ValueError(f"amount {raw!r} is not a number") from None
            if out[local] < 0:
                raise ValueError("the amount is negative")
        elif local == "currency":
            out[local] = currency
        elif local == "close_date":
            parsed = hubspot.parse_time(raw)
            out[local] = parsed.date().isoformat() if parsed else None
        elif local == "owner":
            out[local] = ctx.owner_label.get(raw) if raw else None
        elif local in ("email", "domain"):
            out[local] = _text(raw.lower().removeprefix("www.") if raw else None, local)
        else:
            out[local] = _text(raw, local)
    for required in sync_settings.REQUIRED[obj]:
        if out.get(required) is None:
            raise ValueError(f"no {fmap[required]}")
    if obj == "deals" and "currency" not in out:
        out["currency"] = currency
    return out


def _whole(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if number < 0 or number != number.to_integral_value():
        raise ValueError(f"{name} {raw!r} is not a whole number ≥ 0")
    return int(number)


def to_vendor(values: dict[str, Any], fmap: dict[str, str], currency: str, ctx: RunContext) -> dict[str, str]:
    """HubSpot properties for local values (an owner HubSpot does not know is not sent)."""
    props: dict[str, str] = {}
    for local, value in values.items():
        prop = fmap.get(local)
        if prop is None:
            continue
        if local == "amount_minor":
            props[prop] = str(Decimal(int(value)).scaleb(-exponent(currency)))
        elif local == "close_date":
            props[prop] = hubspot.format_date(date.fromisoformat(value)) if value else ""
        elif local == "owner":
            if value is None:
                props[prop] = ""
            elif value in ctx.owner_id:
                props[prop] = ctx.owner_id[value]
        else:
            props[prop] = "" if value is None else str(value)
    return props


def _fields(obj: str, fmap: dict[str, str]) -> list[str]:
    extra = {"companies": [], "contacts": [COMPANY], "deals": [STAGE, COMPANY]}[obj]
    return [*fmap, *extra]


# --------------------------------------------------------------------------- pull: one page


def _resolve(
    policy: str, vendor_time: datetime | None, local_time: datetime | None, stats: Stats, what: str
) -> bool:
    """True when the vendor's value wins a conflict."""
    if policy == "local_wins":
        return False
    if policy == "newest_wins":
        if vendor_time is None or local_time is None:
            stats.error(
                f"{what}: newest_wins needs both modification times; the vendor's value was taken.",
                skipped=False,
            )
            return True
        return vendor_time >= local_time
    return True


def _pull_record(
    session: Session,
    ctx: RunContext,
    obj: str,
    settings: SyncSettingsOut,
    vid: str,
    incoming: dict[str, Any],
    vendor_time: datetime | None,
    lnk: SalesSyncLink | None,
    stats: Stats,
) -> None:
    fields = list(incoming)
    if lnk is None:
        key = incoming.get("domain") if obj == "companies" else incoming.get("email")
        match = sync_records.match_unlinked(session, ctx.tenant, VENDOR, obj, key)
        if match is None:
            local_id = sync_records.create_local(session, ctx.tenant, ctx.actor, obj, incoming)
            stats.created += 1
        else:
            # First sync of a record both sides hold: the vendor's values, local ones where it has none.
            taken = {k: v for k, v in incoming.items() if v is not None}
            sync_records.update_local(session, ctx.tenant, ctx.actor, obj, match, taken)
            local_id = int(match.id)
            stats.updated += 1
        new = sync_records.link(session, ctx.tenant, VENDOR, obj, local_id, vid, incoming)
        new.vendor_updated_at = vendor_time
        return
    row = session.get(MODELS[obj], lnk.local_id)
    if row is None or row.deleted_at is not None:
        stats.unchanged += 1  # archived here: the push archives it at the vendor
        return
    current = sync_records.local_values(obj, row, fields)
    base = json.loads(lnk.synced_values)
    changes: dict[str, Any] = {}
    for name in fields:
        theirs, ours, was = incoming[name], current[name], base.get(name)
        if theirs == ours:
            base[name] = theirs
            continue
        if theirs == was:
            continue  # only the local side changed: pushed later
        if ours != was and not _resolve(
            sync_settings.policy_for(settings, name)
            if not name.startswith("_")
            else settings.conflict_policy,
            vendor_time,
            sync_records.modified_at(obj, row),
            stats,
            f"{obj} {vid} {name}",
        ):
            stats.conflicts += 1
            base[name] = theirs  # the local value differs from it, so the push sends ours
            continue
        stats.conflicts += int(ours != was)
        changes[name] = theirs
        base[name] = theirs
    if changes:
        sync_records.update_local(session, ctx.tenant, ctx.actor, obj, row, changes)
        stats.updated += 1
    else:
        stats.unchanged += 1
    lnk.synced_values = json.dumps(base, sort_keys=True)
    lnk.vendor_updated_at, lnk.synced_at = vendor_time, utcnow()
    session.add(lnk)


def _store_page(
    session: Session,
    ctx: RunContext,
    obj: str,
    settings: SyncSettingsOut,
    page: hubspot.Page,
    companies_of: dict[str, list[str]],
    advance: Callable[[Any], None],
) -> Stats:
    stats = Stats(pages=1, pulled=len(page.records))
    fmap = sync_settings.mapped(settings)
    stages = sync_records.local_ids(session, ctx.tenant, VENDOR, "stage") if obj == "deals" else {}
    company_ids = (
        sync_records.local_ids(session, ctx.tenant, VENDOR, "companies") if obj != "companies" else {}
    )
    known = sync_records.links(session, ctx.tenant, VENDOR, obj, [str(r["id"]) for r in page.records])
    for record in page.records:
        vid, props = str(record["id"]), hubspot.properties_of(record)
        vendor_time = hubspot.parse_time(record.get("updatedAt") or props.get(hubspot.MODIFIED_PROPERTY[obj]))
        lnk = known.get(vid)
        if lnk is not None and lnk.vendor_updated_at and vendor_time and vendor_time <= lnk.vendor_updated_at:
            stats.unchanged += 1  # our own push, or the boundary record of the last query
            continue
        try:
            incoming = from_vendor(obj, props, fmap, settings, ctx)
            if obj == "deals":
                incoming[STAGE] = stages.get(f"{props.get('pipeline')}:{props.get('dealstage')}")
                if incoming[STAGE] is None:
                    raise ValueError("its pipeline stage is not synced")
            if obj != "companies":
                linked = [company_ids[c] for c in companies_of.get(vid, []) if c in company_ids]
                incoming[COMPANY] = linked[0] if linked else None
        except (ValueError, TypeError) as exc:
            stats.error(f"{obj} {vid}: {exc}")
            continue
        try:
            with session.begin_nested():  # one bad record (a taken domain) rolls back alone
                _pull_record(session, ctx, obj, settings, vid, incoming, vendor_time, lnk, stats)
        except RevOpsError as exc:
            stats.error(f"{obj} {vid}: {exc.message}")
    advance(session)
    return stats


def _store_archived(
    session: Session, ctx: RunContext, obj: str, page: hubspot.Page, advance: Callable[[Any], None]
) -> Stats:
    stats = Stats(pages=1, pulled=len(page.records))
    known = sync_records.links(session, ctx.tenant, VENDOR, obj, [str(r["id"]) for r in page.records])
    ids: list[int] = []
    now = utcnow()
    for record in page.records:
        lnk = known.get(str(record["id"]))
        if lnk is None or lnk.archived_at is not None:
            continue
        row = session.get(MODELS[obj], lnk.local_id)
        if row is not None and row.deleted_at is None:
            ids.append(lnk.local_id)
        lnk.archived_at = hubspot.parse_time(record.get("archivedAt")) or now
        session.add(lnk)
    sync_records.archive_local(session, ctx.tenant, obj, ids)
    stats.archived = len(ids)
    advance(session)
    return stats


def _advance(ctx: RunContext, stream: str, **values: Any) -> Callable[[Session], None]:
    def save(session: Session) -> None:
        row = sync_records.cursor(session, ctx.tenant, VENDOR, stream)
        for name, value in values.items():
            setattr(row, name, value)
        row.pages += 1
        row.updated_at = utcnow()
        session.add(row)

    return save


def _read_cursor(ctx: RunContext, stream: str) -> tuple[datetime | None, str | None, datetime | None]:
    with ctx.runtime.db.session() as session:
        row = sync_records.cursor(session, ctx.tenant, VENDOR, stream)
        return row.since, row.after, row.high_water


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
    since, after, high = await call.in_thread(partial(_read_cursor, ctx, obj))
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
        advance = _advance(ctx, obj, since=since, after=after, high_water=high)
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
        return _store_page(session, ctx, obj, settings, page, extra, advance)

    await _walk_changes(call, hs, ctx, obj, wanted, companies_of, store, stats)
    stream = f"{obj}:archived"
    _, archived_after, _ = await call.in_thread(partial(_read_cursor, ctx, stream))
    for _ in range(ctx.max_pages):
        page = await hs.archived(obj, after=archived_after)
        archived_after = page.after
        advance = _advance(ctx, stream, after=archived_after)
        stats.add(await call.in_thread(ctx.write(_store_archived, ctx, obj, page, advance)))
        if archived_after is None:
            break
    else:
        ctx.complete = False


# --------------------------------------------------------------------------- pipelines and owners


def _stage_kind(metadata: dict[str, Any]) -> tuple[StageKind, int]:
    probability = float(metadata["probability"])
    if not 0 <= probability <= 1:
        raise ValueError(f"probability {probability} is outside 0…1")
    closed = str(metadata.get("isClosed", "false")).lower() == "true"
    kind: StageKind = ("won" if probability >= 1 else "lost") if closed else "open"
    return kind, round(probability * 100)


def _store_pipelines(session: Session, ctx: RunContext, remote: list[dict[str, Any]]) -> Stats:
    """Link every HubSpot deal pipeline and stage to a local one (by name), creating what is missing."""
    stats = Stats()
    linked_pipelines = sync_records.local_ids(session, ctx.tenant, VENDOR, "pipeline")
    linked_stages = sync_records.local_ids(session, ctx.tenant, VENDOR, "stage")
    for pipeline in remote:
        if pipeline.get("archived"):
            continue
        pid = str(pipeline["id"])
        label = str(pipeline.get("label") or pid)[:100]
        vendor_stages = sorted(
            (s for s in pipeline["stages"] if isinstance(s, dict) and not s.get("archived")),
            key=lambda s: int(s.get("displayOrder") or 0),
        )
        try:
            kinds = {str(s["id"]): _stage_kind(s.get("metadata") or {}) for s in vendor_stages}
        except (KeyError, ValueError, TypeError) as exc:
            stats.error(f"pipeline {pid}: a stage has no usable probability ({exc})")
            continue
        local_id = linked_pipelines.get(pid)
        try:
            with session.begin_nested():
                if local_id is None:
                    local_id = _local_pipeline(session, ctx, label, vendor_stages, kinds)
                    sync_records.link(session, ctx.tenant, VENDOR, "pipeline", local_id, pid, {})
                _link_stages(session, ctx, pid, local_id, vendor_stages, kinds, linked_stages, stats)
        except RevOpsError as exc:
            stats.error(f"pipeline {pid}: {exc.message}")
    return stats


def _local_pipeline(
    session: Session,
    ctx: RunContext,
    label: str,
    stages: list[dict[str, Any]],
    kinds: dict[str, tuple[StageKind, int]],
) -> int:
    existing = session.exec(
        select(SalesPipeline).where(SalesPipeline.tenant == ctx.tenant, SalesPipeline.name == label)
    ).first()
    if existing is not None:
        return int(existing.id or 0)
    wanted = [
        pipelines.StageIn(  # kinds come from _stage_kind: open, won or lost
            name=str(s.get("label") or s["id"])[:100],
            probability_pct=kinds[str(s["id"])][1],
            kind=kinds[str(s["id"])][0],
        )
        for s in stages
    ]
    return pipelines.create(session, ctx.tenant, label, wanted).id


def _link_stages(
    session: Session,
    ctx: RunContext,
    pid: str,
    local_pipeline: int,
    stages: list[dict[str, Any]],
    kinds: dict[str, tuple[StageKind, int]],
    linked: dict[str, int],
    stats: Stats,
) -> None:
    local = {s.name.strip().lower(): s for s in pipelines.stages_of(session, local_pipeline).values()}
    for stage in stages:
        key = f"{pid}:{stage['id']}"
        if key in linked:
            continue
        name = str(stage.get("label") or stage["id"])[:100]
        kind, pct = kinds[str(stage["id"])]
        match = local.get(name.strip().lower())
        if match is None:
            if kind != "open":
                stats.error(f"stage {key}: the local pipeline already has its {kind} stage; not linked")
                continue
            position = max((s.position for s in local.values()), default=-1) + 1
            match = SalesStage(
                pipeline_id=local_pipeline, name=name, position=position, probability_pct=pct, kind=kind
            )
            session.add(match)
            session.flush()
            local[name.strip().lower()] = match
        sync_records.link(session, ctx.tenant, VENDOR, "stage", int(match.id or 0), key, {})
        linked[key] = int(match.id or 0)


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
    fields = _fields(obj, fmap)
    stage_keys = {v: k for k, v in sync_records.local_ids(session, ctx.tenant, VENDOR, "stage").items()}
    company_keys = {v: k for k, v in sync_records.local_ids(session, ctx.tenant, VENDOR, "companies").items()}
    plan = _Push()
    for row in sync_records.unlinked_rows(session, ctx.tenant, VENDOR, obj):
        values = sync_records.local_values(obj, row, fields)
        props = to_vendor(values, fmap, getattr(row, "currency", "USD"), ctx)
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
        props = to_vendor(changed, fmap, getattr(row, "currency", "USD"), ctx)
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


def _store_updated(
    session: Session, batch: list[tuple[int, dict[str, Any], dict[str, Any]]], results: list[dict[str, Any]]
) -> Stats:
    stats = Stats()
    times = {str(r["id"]): hubspot.parse_time(r.get("updatedAt")) for r in results}
    for link_id, entry, base in batch:
        lnk = session.get(SalesSyncLink, link_id)
        if lnk is None or entry["id"] not in times:
            stats.error(f"{entry['id']}: HubSpot did not confirm the update")
            continue
        lnk.synced_values = json.dumps(base, sort_keys=True)
        lnk.vendor_updated_at, lnk.synced_at = times[entry["id"]], utcnow()
        session.add(lnk)
        stats.pushed_updated += 1
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
        stats.add(await call.in_thread(ctx.write(_store_updated, updates, updated)))
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


def _start(ctx: RunContext, objects: list[str]) -> int:
    with ctx.runtime.db.session(write=True) as session:
        run = SalesSyncRun(tenant=ctx.tenant, vendor=VENDOR, objects=",".join(objects), actor=ctx.actor)
        session.add(run)
        session.flush()
        return int(run.id or 0)


def _finish(ctx: RunContext, run_id: int, stats: Stats, error: RevOpsError | None) -> str:
    status = "failed" if error else ("ok" if ctx.complete else "partial")
    with ctx.runtime.db.session(write=True) as session:
        run = session.get(SalesSyncRun, run_id)
        assert run is not None
        for name in Stats.__dataclass_fields__:
            if name != "errors":
                setattr(run, name, getattr(stats, name))
        run.errors = json.dumps(stats.errors)
        run.status, run.finished_at = status, utcnow()
        if error is not None:
            run.error_code, run.error_message = error.code, error.message[:500]
        session.add(run)
    return status


def _settings(runtime: Runtime, tenant: str, objects: list[str]) -> dict[str, SyncSettingsOut]:
    with runtime.db.session() as session:
        return {
            obj: sync_settings.effective(session, tenant, VENDOR, obj)
            for obj in objects
            if obj in sync_settings.DEFAULT_MAPS
        }


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
    ctx = RunContext(call.runtime, call.tenant, call.actor, max_pages)
    settings = await call.in_thread(partial(_settings, call.runtime, call.tenant, ordered))
    run_id = await call.in_thread(partial(_start, ctx, ordered))
    call.target = f"sales_sync_run:{run_id}"
    stats = Stats()
    try:
        async with hubspot.HubSpotClient(
            credentials, call.runtime, **call.vendor_options(hubspot.SPEC.provider)
        ) as hs:
            if "deals" in ordered:
                remote = await hs.pipelines("deals")
                stats.add(await call.in_thread(ctx.write(_store_pipelines, ctx, remote)))
            if {"deals", *ONE_WAY} & set(ordered):
                _owners(ctx, await hs.owners())
            for obj, chosen in settings.items():
                if chosen.direction in ("both", "pull"):
                    await _pull(call, hs, ctx, obj, chosen, stats)
            if "notes" in ordered:
                await _pull_notes(call, hs, ctx, stats)
            if "tasks" in ordered:
                await _pull_tasks(call, hs, ctx, stats)
            for obj, chosen in settings.items():
                if chosen.direction in ("both", "push"):
                    await _push(call, hs, ctx, obj, chosen, stats)
    except RevOpsError as exc:
        await call.in_thread(partial(_finish, ctx, run_id, stats, exc))
        raise
    except Exception:
        # A crash still closes the run, so its status never stays "running".
        crash = InternalError("The sync stopped on an unexpected error.")
        await call.in_thread(partial(_finish, ctx, run_id, stats, crash))
        raise
    status = await call.in_thread(partial(_finish, ctx, run_id, stats, None))
    call.audit_details.update(run_id=run_id, status=status)
    return SyncRunOut(
        run_id=run_id,
        status=status,
        objects=ordered,
        **{k: getattr(stats, k) for k in Stats.__dataclass_fields__},
    )
