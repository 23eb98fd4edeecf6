"""The vendor-neutral pull of a CRM sync: vendor records, already in one normalised shape, into local
rows; deal pipelines and stages linked by name; run bookkeeping (start, finish, cursors).

A vendor module adapts its records to the normalised shape — `{"id", "properties", "updatedAt",
"archivedAt"}`, deals carrying `pipeline` and `dealstage` among their properties, contacts and deals
their company ids through `companies_of` — and states its `Dialect` (time parsing, date and number
formats, how a cleared value is sent). Each page is written with its stream's cursor in one
transaction (`RunContext.write`), so an interrupted run resumes at the first page not committed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Protocol, TypeVar

from pydantic import Field
from sqlmodel import Session, select

from revops_core.db import utcnow
from revops_core.errors import InternalError, RevOpsError
from revops_core.money import exponent, to_minor
from revops_core.outputs import Out
from revops_core.server import Call, Runtime
from revops_sales.models.pipelines import SalesPipeline, SalesStage, StageKind
from revops_sales.models.sync import SalesSyncLink, SalesSyncRun
from revops_sales.services import pipelines, sync_records, sync_settings
from revops_sales.services.sync_records import COMPANY, MODELS, STAGE, Stats
from revops_sales.services.sync_settings import SyncSettingsOut

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


class PageLike(Protocol):
    """A vendor page of normalised records."""

    @property
    def records(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Dialect:
    """What differs between vendors in reading and writing the same values."""

    vendor: str
    parse_time: Callable[[Any], datetime | None]  # a vendor time or date value → aware UTC
    record_time: Callable[[str, dict[str, Any]], datetime | None]  # (object, record) → its modification
    format_date: Callable[[date], str]
    number: Callable[[Decimal], Any]  # an amount as the vendor takes it
    cleared: Any  # what clears a field at the vendor ("" or None)


def properties_of(record: dict[str, Any]) -> dict[str, Any]:
    value = record.get("properties")
    return dict(value) if isinstance(value, dict) else {}


class SyncRunOut(Out):
    run_id: int = Field(description="Sync run id.")
    status: str = Field(description="ok, or partial: stopped early (max_pages, API limit).")
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
    dialect: Dialect
    owner_label: dict[str, str] = field(default_factory=dict)  # owner id → email (or name)
    owner_id: dict[str, str] = field(default_factory=dict)  # email/name → owner id
    complete: bool = True

    def write(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        """`fn(session, *args)` in one write transaction of its own (for `call.in_thread`)."""

        def run() -> T:
            with self.runtime.db.session(write=True) as session:
                return fn(session, *args)

        return run


def text_value(raw: str | None, name: str) -> str | None:
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
            out[local] = whole(raw, local)
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
            parsed = ctx.dialect.parse_time(raw)
            out[local] = parsed.date().isoformat() if parsed else None
        elif local == "owner":
            out[local] = ctx.owner_label.get(raw) if raw else None
        elif local in ("email", "domain"):
            out[local] = text_value(raw.lower().removeprefix("www.") if raw else None, local)
        else:
            out[local] = text_value(raw, local)
    for required in sync_settings.REQUIRED[obj]:
        if out.get(required) is None:
            raise ValueError(f"no {fmap[required]}")
    if obj == "deals" and "currency" not in out:
        out["currency"] = currency
    return out


def whole(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if number < 0 or number != number.to_integral_value():
        raise ValueError(f"{name} {raw!r} is not a whole number ≥ 0")
    return int(number)


def to_vendor(values: dict[str, Any], fmap: dict[str, str], currency: str, ctx: RunContext) -> dict[str, Any]:
    """Vendor properties for local values (an owner the vendor does not know is not sent)."""
    props: dict[str, Any] = {}
    for local, value in values.items():
        prop = fmap.get(local)
        if prop is None:
            continue
        if local == "amount_minor":
            props[prop] = ctx.dialect.number(Decimal(int(value)).scaleb(-exponent(currency)))
        elif local == "close_date":
            props[prop] = ctx.dialect.format_date(date.fromisoformat(value)) if value else ctx.dialect.cleared
        elif local == "owner":
            if value is None:
                props[prop] = ctx.dialect.cleared
            elif value in ctx.owner_id:
                props[prop] = ctx.owner_id[value]
        else:
            props[prop] = ctx.dialect.cleared if value is None else str(value)
    return props


def fields_of(obj: str, fmap: dict[str, str]) -> list[str]:
    extra = {"companies": [], "contacts": [COMPANY], "deals": [STAGE, COMPANY]}[obj]
    return [*fmap, *extra]


def resolve(
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


def pull_record(
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
        match = sync_records.match_unlinked(session, ctx.tenant, ctx.dialect.vendor, obj, key)
        if match is None:
            local_id = sync_records.create_local(session, ctx.tenant, ctx.actor, obj, incoming)
            stats.created += 1
        else:
            # First sync of a record both sides hold: the vendor's values, local ones where it has none.
            taken = {k: v for k, v in incoming.items() if v is not None}
            sync_records.update_local(session, ctx.tenant, ctx.actor, obj, match, taken)
            local_id = int(match.id)
            stats.updated += 1
        new = sync_records.link(session, ctx.tenant, ctx.dialect.vendor, obj, local_id, vid, incoming)
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
        if ours != was and not resolve(
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


def store_page(
    session: Session,
    ctx: RunContext,
    obj: str,
    settings: SyncSettingsOut,
    page: PageLike,
    companies_of: dict[str, list[str]],
    advance: Callable[[Any], None],
) -> Stats:
    stats = Stats(pages=1, pulled=len(page.records))
    fmap = sync_settings.mapped(settings)
    stages = (
        sync_records.local_ids(session, ctx.tenant, ctx.dialect.vendor, "stage") if obj == "deals" else {}
    )
    company_ids = (
        sync_records.local_ids(session, ctx.tenant, ctx.dialect.vendor, "companies")
        if obj != "companies"
        else {}
    )
    known = sync_records.links(
        session, ctx.tenant, ctx.dialect.vendor, obj, [str(r["id"]) for r in page.records]
    )
    for record in page.records:
        vid, props = str(record["id"]), properties_of(record)
        vendor_time = ctx.dialect.record_time(obj, record)
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
                pull_record(session, ctx, obj, settings, vid, incoming, vendor_time, lnk, stats)
        except RevOpsError as exc:
            stats.error(f"{obj} {vid}: {exc.message}")
    advance(session)
    return stats


def store_archived(
    session: Session, ctx: RunContext, obj: str, page: PageLike, advance: Callable[[Any], None]
) -> Stats:
    stats = Stats(pages=1, pulled=len(page.records))
    known = sync_records.links(
        session, ctx.tenant, ctx.dialect.vendor, obj, [str(r["id"]) for r in page.records]
    )
    ids: list[int] = []
    now = utcnow()
    for record in page.records:
        lnk = known.get(str(record["id"]))
        if lnk is None or lnk.archived_at is not None:
            continue
        row = session.get(MODELS[obj], lnk.local_id)
        if row is not None and row.deleted_at is None:
            ids.append(lnk.local_id)
        lnk.archived_at = ctx.dialect.parse_time(record.get("archivedAt")) or now
        session.add(lnk)
    sync_records.archive_local(session, ctx.tenant, obj, ids)
    stats.archived = len(ids)
    advance(session)
    return stats


def advance(ctx: RunContext, stream: str, **values: Any) -> Callable[[Session], None]:
    def save(session: Session) -> None:
        row = sync_records.cursor(session, ctx.tenant, ctx.dialect.vendor, stream)
        for name, value in values.items():
            setattr(row, name, value)
        row.pages += 1
        row.updated_at = utcnow()
        session.add(row)

    return save


def read_cursor(ctx: RunContext, stream: str) -> tuple[datetime | None, str | None, datetime | None]:
    with ctx.runtime.db.session() as session:
        row = sync_records.cursor(session, ctx.tenant, ctx.dialect.vendor, stream)
        return row.since, row.after, row.high_water


def stage_kind(metadata: dict[str, Any]) -> tuple[StageKind, int]:
    probability = float(metadata["probability"])
    if not 0 <= probability <= 1:
        raise ValueError(f"probability {probability} is outside 0…1")
    closed = str(metadata.get("isClosed", "false")).lower() == "true"
    kind: StageKind = ("won" if probability >= 1 else "lost") if closed else "open"
    return kind, round(probability * 100)


def store_pipelines(session: Session, ctx: RunContext, remote: list[dict[str, Any]]) -> Stats:
    """Link every vendor deal pipeline and stage to a local one (by name), creating what is missing."""
    stats = Stats()
    linked_pipelines = sync_records.local_ids(session, ctx.tenant, ctx.dialect.vendor, "pipeline")
    linked_stages = sync_records.local_ids(session, ctx.tenant, ctx.dialect.vendor, "stage")
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
            kinds = {str(s["id"]): stage_kind(s.get("metadata") or {}) for s in vendor_stages}
        except (KeyError, ValueError, TypeError) as exc:
            stats.error(f"pipeline {pid}: a stage has no usable probability ({exc})")
            continue
        local_id = linked_pipelines.get(pid)
        try:
            with session.begin_nested():
                if local_id is None:
                    local_id = _local_pipeline(session, ctx, label, vendor_stages, kinds)
                    sync_records.link(session, ctx.tenant, ctx.dialect.vendor, "pipeline", local_id, pid, {})
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
        sync_records.link(session, ctx.tenant, ctx.dialect.vendor, "stage", int(match.id or 0), key, {})
        linked[key] = int(match.id or 0)


def store_updated(
    session: Session,
    batch: list[tuple[int, dict[str, Any], dict[str, Any]]],
    times: dict[str, datetime | None],
) -> Stats:
    """Record the values a vendor accepted; `times`: vendor id → its new modification time."""
    stats = Stats()
    for link_id, entry, base in batch:
        lnk = session.get(SalesSyncLink, link_id)
        if lnk is None or entry["id"] not in times:
            stats.error(f"{entry['id']}: the vendor did not confirm the update")
            continue
        lnk.synced_values = json.dumps(base, sort_keys=True)
        lnk.vendor_updated_at, lnk.synced_at = times[entry["id"]], utcnow()
        session.add(lnk)
        stats.pushed_updated += 1
    return stats


def start(ctx: RunContext, objects: list[str]) -> int:
    with ctx.runtime.db.session(write=True) as session:
        run = SalesSyncRun(
            tenant=ctx.tenant, vendor=ctx.dialect.vendor, objects=",".join(objects), actor=ctx.actor
        )
        session.add(run)
        session.flush()
        return int(run.id or 0)


def finish(ctx: RunContext, run_id: int, stats: Stats, error: RevOpsError | None) -> str:
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


def flowing(settings: dict[str, SyncSettingsOut], way: str) -> list[tuple[str, SyncSettingsOut]]:
    """The objects whose direction lets records flow `way` ("pull" or "push"), in order."""
    return [(obj, chosen) for obj, chosen in settings.items() if chosen.direction in ("both", way)]


def load_settings(
    runtime: Runtime, tenant: str, vendor: str, objects: list[str]
) -> dict[str, SyncSettingsOut]:
    with runtime.db.session() as session:
        return {
            obj: sync_settings.effective(session, tenant, vendor, obj)
            for obj in objects
            if obj in sync_settings.DEFAULT_MAPS
        }


async def recorded_run(
    call: Call, ctx: RunContext, objects: list[str], body: Callable[[Stats], Awaitable[None]]
) -> SyncRunOut:
    """Run `body(stats)` as one sync run: started, finished (ok, partial or failed) and audited."""
    run_id = await call.in_thread(partial(start, ctx, objects))
    call.target = f"sales_sync_run:{run_id}"
    stats = Stats()
    try:
        await body(stats)
    except RevOpsError as exc:
        await call.in_thread(partial(finish, ctx, run_id, stats, exc))
        raise
    except Exception:
        # A crash still closes the run, so its status never stays "running".
        crash = InternalError("The sync stopped on an unexpected error.")
        await call.in_thread(partial(finish, ctx, run_id, stats, crash))
        raise
    status = await call.in_thread(partial(finish, ctx, run_id, stats, None))
    call.audit_details.update(run_id=run_id, status=status)
    return SyncRunOut(
        run_id=run_id,
        status=status,
        objects=objects,
        **{k: getattr(stats, k) for k in Stats.__dataclass_fields__},
    )
