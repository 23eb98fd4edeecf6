"""Stalled and slipping open deals: stage durations and close-date moves read in SQL, judged in
`analytics.stalls`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import BigInteger, String, cast, extract, func, type_coerce
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from revops_core.db import utcnow
from revops_core.outputs import Out
from revops_core.params import end_of_day, start_of_day
from revops_sales.analytics import stalls
from revops_sales.models.activities import SalesActivity
from revops_sales.models.deals import SalesDeal, SalesDealChange, SalesStageMove
from revops_sales.models.pipelines import SalesStage
from revops_sales.services.deals import DealOut, deal_columns, deal_out_row


class DealAlert(Out):
    deal: DealOut = Field(description="The deal.")
    days_in_stage: float = Field(description="Days since it entered its current stage.")
    stage_median_days: float | None = Field(
        description="Median days in this stage over won deals; null under the minimum sample."
    )
    stage_sample: int = Field(description="Won deals that left this stage (the median's sample).")
    last_activity_at: datetime | None = Field(description="Latest logged activity; null if none.")
    stalled: list[str] = Field(description="Why it is stalled (empty if not).")
    slipping: list[str] = Field(description="Why it is slipping (empty if not).")
    not_evaluated: list[str] = Field(description="Rules that could not be applied, with the reason.")


class DealAlerts(Out):
    as_of: date = Field(description="Day judged.")
    open_deals: int = Field(description="Open deals examined.")
    alerts: list[DealAlert] = Field(description="Deals stalled or slipping, longest in stage first.")
    notes: list[str] = Field(description="What the rules leave out.")


_TIMES = ("created_at", "stage_entered_at", "closed_at")


def _raw(column: Any) -> Any:
    """A timestamp column read without UTCDateTime's per-row processing (see `_reader`)."""
    return type_coerce(column, String)


def _reader(session: Session) -> Callable[[Any], datetime | None]:
    """Turns a `_raw` timestamp into an aware datetime: SQLite's stored ISO text (always UTC) is
    parsed in C; PostgreSQL's driver already gives an aware datetime (in the session's zone: the
    same instant, so differences are unchanged; `.astimezone(UTC)` before it is shown)."""
    if session.get_bind().dialect.name == "sqlite":
        return lambda v: None if v is None else datetime.fromisoformat(v).replace(tzinfo=UTC)
    return lambda v: v


def _won_deals(tenant: str, pipeline_id: int | None) -> Any:
    """The ids of the live won deals in scope, as a subquery (never a list of ids)."""
    won = (
        select(SalesDeal.id)
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(SalesDeal.tenant == tenant, SalesStage.kind == "won", col(SalesDeal.deleted_at).is_(None))
    )
    return won if pipeline_id is None else won.where(SalesDeal.pipeline_id == pipeline_id)


def _seconds_between_instants(entered: datetime, left: datetime) -> float:
    return (left - entered).total_seconds()


def _seconds_between_micros(entered: int, left: int) -> float:
    return (left - entered) / 10**6  # exact integers divided once, as total_seconds() does


def won_stage_durations(session: Session, tenant: str, pipeline_id: int | None) -> list[tuple[int, float]]:
    """(stage id, days in it) for every stage a won deal passed through and left.

    A stay ends at the deal's next move: the moves come in (deal, id) order (on SQLite straight
    from ix_sales_stage_move_deal_order) and consecutive ones of a deal are paired while the
    result streams, which is faster on both backends than lead() over the same rows. Instants are
    never read through UTCDateTime row by row: PostgreSQL gives exact epoch microseconds
    (extract(epoch) is an exact numeric from PostgreSQL 14), SQLite its stored ISO text, parsed in
    C. Either way a stay is the float `timedelta.total_seconds() / 86 400` gives."""
    at = col(SalesStageMove.at)
    parse: Callable[[Any], Any]
    elapsed: Callable[[Any, Any], float]
    if session.get_bind().dialect.name == "sqlite":
        instant, parse = _raw(at), datetime.fromisoformat
        elapsed = _seconds_between_instants
    else:
        instant, parse = cast(extract("epoch", at) * 1_000_000, BigInteger), int
        elapsed = _seconds_between_micros
    moves = (
        select(col(SalesStageMove.deal_id), col(SalesStageMove.to_stage_id), instant)
        .where(col(SalesStageMove.deal_id).in_(_won_deals(tenant, pipeline_id)))
        .order_by(col(SalesStageMove.deal_id), col(SalesStageMove.id))
    )
    found: list[tuple[int, float]] = []
    previous_deal, previous_stage = None, 0
    entered: Any = None
    for deal_id, stage_id, raw in session.connection().execute(moves):
        moved: Any = parse(raw)
        if deal_id == previous_deal:
            found.append((previous_stage, elapsed(entered, moved) / 86_400))
        previous_deal, previous_stage, entered = deal_id, stage_id, moved
    return found


def won_stage_medians(
    session: Session, tenant: str, pipeline_id: int | None
) -> tuple[dict[int, float], dict[int, int]]:
    """(median days in stage, won stays sampled) per stage over won deals' histories."""
    return stalls.medians_and_samples(won_stage_durations(session, tenant, pipeline_id))


def _pushes(
    session: Session, tenant: str, pipeline_id: int | None, since: datetime, until: datetime
) -> dict[int, list[stalls.Push]]:
    """Close dates moved later in [since, until), per open deal, oldest first."""
    query = (
        select(SalesDealChange.deal_id, SalesDealChange.old_value, SalesDealChange.new_value)
        .join(SalesDeal, col(SalesDeal.id) == col(SalesDealChange.deal_id))
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            SalesDeal.tenant == tenant,
            SalesStage.kind == "open",
            SalesDealChange.field == "close_date",
            col(SalesDealChange.at) >= since,
            col(SalesDealChange.at) < until,
        )
        .order_by(col(SalesDealChange.id))
    )
    if pipeline_id is not None:
        query = query.where(SalesDeal.pipeline_id == pipeline_id)
    pushes: dict[int, list[stalls.Push]] = {}
    for deal_id, old, new in session.exec(query).all():
        if old is not None and new is not None and date.fromisoformat(new) > date.fromisoformat(old):
            pushes.setdefault(deal_id, []).append(
                stalls.Push(date.fromisoformat(old), date.fromisoformat(new))
            )
    return pushes


def _open_deals(
    session: Session, tenant: str, pipeline_id: int | None, until: datetime
) -> list[dict[str, Any]]:
    """Open deals as plain rows (the DealOut columns and the latest activity before `until`, from
    the (deal_id, occurred_at) index): no ORM objects, one query, timestamps read raw."""
    latest = (
        select(func.max(SalesActivity.occurred_at))
        .where(
            col(SalesActivity.deal_id) == col(SalesDeal.id),
            SalesActivity.tenant == tenant,
            col(SalesActivity.occurred_at) < until,
        )
        .scalar_subquery()
    )
    columns = [c for c in deal_columns() if c.key not in _TIMES]
    query = (
        core_select(
            *columns,
            *(_raw(getattr(SalesDeal, name)).label(name) for name in _TIMES),
            _raw(latest).label("last_activity_at"),
        )
        .join(SalesStage, col(SalesStage.id) == col(SalesDeal.stage_id))
        .where(
            col(SalesDeal.tenant) == tenant,
            col(SalesStage.kind) == "open",
            col(SalesDeal.deleted_at).is_(None),
        )
        .order_by(col(SalesDeal.id))
    )
    if pipeline_id is not None:
        query = query.where(col(SalesDeal.pipeline_id) == pipeline_id)
    read = _reader(session)
    rows = []
    for row in session.connection().execute(query).mappings():
        found = dict(row)
        for name in (*_TIMES, "last_activity_at"):
            found[name] = read(found[name])
        rows.append(found)
    return rows


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its timestamps in UTC, as UTCDateTime would have returned them."""
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


def alerts(
    session: Session,
    tenant: str,
    *,
    pipeline_id: int | None,
    as_of: date,
    factor: float,
    limit: int,
    idle_days: int = stalls.IDLE_DAYS,
) -> DealAlerts:
    # Judged at the end of the as-of day, or now when that is today.
    moment = min(utcnow(), end_of_day(as_of))
    medians, samples = won_stage_medians(session, tenant, pipeline_id)
    pushes = _pushes(session, tenant, pipeline_id, start_of_day(stalls.quarter_start(as_of)), moment)
    rows = _open_deals(session, tenant, pipeline_id, moment)
    # Judged on plain rows; a DealOut is built only for the alerts returned.
    judged: list[tuple[float, Any, stalls.Verdict]] = []
    for row in rows:
        days = max(0.0, (moment - row["stage_entered_at"]).total_seconds() / 86_400)
        last = row["last_activity_at"]
        since = last or row["created_at"]
        stage_id = row["stage_id"]
        verdict = stalls.judge(
            days_in_stage=days,
            stage_median=medians.get(stage_id),
            stage_sample=samples.get(stage_id, 0),
            close_date=row["close_date"],
            pushes=pushes.get(row["id"], []),
            days_idle=max(0.0, (moment - since).total_seconds() / 86_400),
            idle_since="the last logged activity" if last else "the deal was created (no activity logged)",
            as_of=as_of,
            factor=factor,
            idle_days=idle_days,
        )
        if verdict.stalled or verdict.slipping:
            judged.append((round(days, 1), row, verdict))
    judged.sort(key=lambda j: -j[0])  # stable: ties stay in deal id order
    found = []
    for days, raw, verdict in judged[:limit]:
        row = _shown(raw)
        sample = samples.get(row["stage_id"], 0)
        found.append(
            DealAlert(
                deal=deal_out_row(row),
                days_in_stage=days,
                stage_median_days=medians.get(row["stage_id"]) if sample >= stalls.MIN_STAGE_SAMPLE else None,
                stage_sample=sample,
                last_activity_at=row["last_activity_at"],
                stalled=verdict.stalled,
                slipping=verdict.slipping,
                not_evaluated=verdict.not_evaluated,
            )
        )
    return DealAlerts(
        as_of=as_of,
        open_deals=len(rows),
        alerts=found,
        notes=[
            "Days in stage and activity are measured at the end of the as-of day (now, for today) from the"
            " deals' current stages.",
            f"A stage's median needs {stalls.MIN_STAGE_SAMPLE} won deals that left it; under that the rule"
            " is listed in not_evaluated.",
        ],
    )
