"""Product usage: ingest events (API, CSV, Mixpanel importer…) with validation and dedupe; read them back.

Dedupe key: (source, external_id). Events without an external id cannot be deduplicated and are
always inserted. Importers call `ingest_usage_events`; the `record_usage_events` tool does too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import Field, field_validator
from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.params import MAX_ID, SingleLine, WholeNumber, end_of_day, start_of_day
from revops_cs.models.clients import CsClient
from revops_cs.models.usage import CsUsageEvent
from revops_cs.output import LeanIn, Out


class UsageEventIn(LeanIn):
    """One usage event to store."""

    client_id: Annotated[int, WholeNumber] = Field(
        ge=1, le=MAX_ID, description="Client id (see list_clients)."
    )
    user_ref: Annotated[str, SingleLine] = Field(
        min_length=1, max_length=200, description="End user (email or product user id)."
    )
    event: str = Field(
        min_length=1, max_length=100, pattern=r"^[a-z0-9_.:-]+$", description="Event name; 'login' = session."
    )
    feature: Annotated[str | None, SingleLine] = Field(
        default=None, max_length=100, description="Feature used, if any."
    )
    quantity: float = Field(default=1.0, ge=0, le=1e9, description="Amount (default 1).")
    occurred_at: datetime = Field(description="When it happened (ISO 8601 with timezone).")
    external_id: Annotated[str | None, SingleLine] = Field(
        default=None, max_length=200, description="Source's event id (dedupe)."
    )

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a timezone (e.g. 2026-01-31T09:00:00Z)")
        return value.astimezone(UTC)


class IngestReport(Out):
    received: int = Field(description="Events received.")
    inserted: int = Field(description="Events stored.")
    duplicates: int = Field(description="Skipped: (source, external_id) seen.")
    source: str = Field(description="Source.")


def ingest_usage_events(session: Session, events: list[UsageEventIn], *, source: str) -> IngestReport:
    """Validate client ids and timestamps, skip duplicates, bulk-insert the rest (no commit)."""
    if not source or len(source) > 30:
        raise ValidationFailed(
            "source must be 1–30 characters.", field="source", hint="e.g. 'api' or 'mixpanel'."
        )
    now = datetime.now(UTC)
    for i, ev in enumerate(events):
        if ev.occurred_at > now:
            raise ValidationFailed(
                f"events[{i}].occurred_at is in the future.",
                field=f"events[{i}].occurred_at",
                hint="Send events that already happened; nothing was stored.",
            )
    ids = sorted({ev.client_id for ev in events})
    found = set(
        session.exec(select(CsClient.id).where(col(CsClient.id).in_(ids), col(CsClient.deleted_at).is_(None)))
    )
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise NotFound(
            f"Unknown or archived client id(s): {unknown[:10]}.",
            field="client_id",
            hint="Use ids from list_clients; nothing was stored.",
        )
    ext_ids = sorted({ev.external_id for ev in events if ev.external_id})
    seen: set[str] = set()
    for chunk_start in range(0, len(ext_ids), 500):
        chunk = ext_ids[chunk_start : chunk_start + 500]
        seen.update(
            e
            for e in session.exec(
                select(CsUsageEvent.external_id).where(
                    CsUsageEvent.source == source, col(CsUsageEvent.external_id).in_(chunk)
                )
            )
            if e
        )
    rows = []
    duplicates = 0
    for ev in events:
        if ev.external_id:
            if ev.external_id in seen:
                duplicates += 1
                continue
            seen.add(ev.external_id)
        rows.append(ev.model_dump() | {"source": source})
    if rows:
        # Core insert, not ORM objects: importers send thousands of rows at once.
        session.connection().execute(insert(CsUsageEvent), rows)
    return IngestReport(received=len(events), inserted=len(rows), duplicates=duplicates, source=source)


def usage_rows(
    session: Session, client_id: int, first: date, last: date
) -> list[tuple[date, str, str, str | None]]:
    """(day, user, event, feature) of a client's usage events from `first` to `last` inclusive."""
    rows = session.exec(
        select(
            CsUsageEvent.occurred_at, CsUsageEvent.user_ref, CsUsageEvent.event, CsUsageEvent.feature
        ).where(
            CsUsageEvent.client_id == client_id,
            CsUsageEvent.occurred_at >= start_of_day(first),
            CsUsageEvent.occurred_at < end_of_day(last),
        )
    ).all()
    return [(at.date(), user, event, feature) for at, user, event, feature in rows]


class UsageSummary(Out):
    events: int = Field(description="Usage events in the window.")
    logins: int = Field(description="Login events in the window.")
    active_users: int = Field(description="Distinct users.")
    top_features: dict[str, int] = Field(description="Events per feature (top 5).")
    last_event_at: datetime | None = Field(description="Latest event up to the window's end; null if none.")


def usage_summary(session: Session, client_id: int, as_of: date, days: int = 30) -> UsageSummary:
    """Counts of a client's usage in the `days` ending on `as_of`."""
    start, end = start_of_day(as_of - timedelta(days=days - 1)), end_of_day(as_of)
    in_window = (
        (CsUsageEvent.client_id == client_id)
        & (CsUsageEvent.occurred_at >= start)
        & (CsUsageEvent.occurred_at < end)
    )
    events, users = session.exec(
        select(func.count(), func.count(func.distinct(CsUsageEvent.user_ref))).where(in_window)
    ).one()
    logins = session.exec(select(func.count()).where(in_window, CsUsageEvent.event == "login")).one()
    features = session.exec(
        select(CsUsageEvent.feature, func.count())
        .where(in_window, col(CsUsageEvent.feature).is_not(None))
        .group_by(CsUsageEvent.feature)
        .order_by(func.count().desc(), col(CsUsageEvent.feature))
        .limit(5)
    ).all()
    last = session.exec(
        select(func.max(CsUsageEvent.occurred_at)).where(
            CsUsageEvent.client_id == client_id, CsUsageEvent.occurred_at < end
        )
    ).one()
    return UsageSummary(
        events=events,
        logins=logins,
        active_users=users,
        top_features={str(f): int(n) for f, n in features},
        last_event_at=last,
    )
