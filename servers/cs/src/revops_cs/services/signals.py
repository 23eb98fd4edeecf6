"""Load each client's stored history once, then measure it as of any date (in memory).

Churn rules, the churn model's features, expansion signals and post-mortems all read the same
facts; loading a client's rows once lets the model measure many observation dates cheaply.
Usage is counted from `cs_usage_event` rows only (never from stage or health).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from revops_core.params import end_of_day, start_of_day
from revops_cs.analytics.churn_rules import ChurnRules, RiskFacts
from revops_cs.models.clients import CsClient
from revops_cs.models.escalations import CsEscalation
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.health import CsHealthSnapshot
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsUsageEvent

LOGIN = "login"


class HealthPoint(NamedTuple):
    """A stored health snapshot as the histories read it (the columns, not an ORM object)."""

    as_of: date
    score: float
    band: str
    computed_at: datetime


@dataclass
class History:
    client: CsClient
    usage_at: list[datetime] = field(default_factory=list)  # sorted
    usage: list[tuple[datetime, str, str]] = field(default_factory=list)  # (at, event, user), sorted
    logins: list[datetime] = field(default_factory=list)
    tickets: list[datetime] = field(default_factory=list)
    escalations: list[CsEscalation] = field(default_factory=list)
    nps: list[tuple[datetime, int]] = field(default_factory=list)
    failed_payments: list[datetime] = field(default_factory=list)
    health: list[HealthPoint] = field(default_factory=list)  # sorted by as_of, then id
    mrr_at: list[datetime] = field(default_factory=list)  # recorded MRR changes, sorted
    mrr: list[int] = field(default_factory=list)  # the new MRR of each change, minor units

    # ------------------------------------------------------------------ measures
    def events_between(self, start: datetime, end: datetime) -> int:
        """Usage events with start <= occurred_at < end."""
        return bisect.bisect_left(self.usage_at, end) - bisect.bisect_left(self.usage_at, start)

    def usage_window(self, as_of: date, days: int, back: int = 0) -> int:
        """Events in the `days`-day window ending `back` windows before as_of (inclusive of as_of)."""
        end = end_of_day(as_of) - timedelta(days=days * back)
        return self.events_between(end - timedelta(days=days), end)

    def last_login(self, as_of: date) -> date | None:
        i = bisect.bisect_left(self.logins, end_of_day(as_of))
        return self.logins[i - 1].date() if i else None

    def logins_between(self, start: datetime, end: datetime) -> int:
        return bisect.bisect_left(self.logins, end) - bisect.bisect_left(self.logins, start)

    def tickets_in(self, as_of: date, days: int) -> int:
        end = end_of_day(as_of)
        start = end - timedelta(days=days)
        return sum(1 for t in self.tickets if start <= t < end)

    def urgent_escalations(self, as_of: date, days: int = 30) -> list[tuple[int, date, str]]:
        """Urgent escalations open at as_of or opened in the last `days` days."""
        end = end_of_day(as_of)
        out = []
        for e in self.escalations:
            if e.severity != "urgent" or e.opened_at >= end:
                continue
            open_then = e.resolved_at is None or e.resolved_at >= end
            if open_then or e.opened_at >= end - timedelta(days=days):
                out.append((e.id or 0, e.opened_at.date(), "open" if open_then else "resolved"))
        return out

    def latest_nps(self, as_of: date) -> tuple[int, date] | None:
        end = end_of_day(as_of)
        past = [(at, s) for at, s in self.nps if at < end]
        return (past[-1][1], past[-1][0].date()) if past else None

    def latest_health(self, as_of: date) -> HealthPoint | None:
        past = [h for h in self.health if h.as_of <= as_of]
        return past[-1] if past else None

    def known_health(self, as_of: date) -> HealthPoint | None:
        """The latest snapshot dated by as_of that was also computed by then (a score computed
        later reads the client's fields as they are at computation time, not as they were)."""
        end = end_of_day(as_of)
        past = [h for h in self.health if h.as_of <= as_of and h.computed_at < end]
        return past[-1] if past else None

    def arr_as_of(self, as_of: date) -> int | None:
        """ARR (12 × MRR, minor units) from the last recorded MRR change by as_of; None before any."""
        i = bisect.bisect_left(self.mrr_at, end_of_day(as_of))
        return 12 * self.mrr[i - 1] if i else None

    def failed_payments_in(self, as_of: date, days: int) -> list[date]:
        end = end_of_day(as_of)
        return [p.date() for p in self.failed_payments if end - timedelta(days=days) <= p < end]

    def active_users(self, as_of: date, days: int = 30) -> int:
        end = end_of_day(as_of)
        lo = bisect.bisect_left(self.usage_at, end - timedelta(days=days))
        hi = bisect.bisect_left(self.usage_at, end)
        return len({u for _, _, u in self.usage[lo:hi]})

    def named_events(self, as_of: date, days: int, names: Iterable[str]) -> int:
        wanted = set(names)
        end = end_of_day(as_of)
        lo = bisect.bisect_left(self.usage_at, end - timedelta(days=days))
        hi = bisect.bisect_left(self.usage_at, end)
        return sum(1 for _, e, _ in self.usage[lo:hi] if e in wanted)

    def first_event(self, name: str, since: date | None = None) -> datetime | None:
        floor = start_of_day(since) if since else None
        for at, e, _ in self.usage:
            if e == name and (floor is None or at >= floor):
                return at
        return None

    def risk_facts(self, as_of: date, cfg: ChurnRules) -> RiskFacts:
        h = self.latest_health(as_of)
        return RiskFacts(
            as_of=as_of,
            usage_current=self.usage_window(as_of, 30),
            usage_previous=self.usage_window(as_of, 30, back=1),
            last_login=self.last_login(as_of),
            tickets_30d=self.tickets_in(as_of, 30),
            urgent_escalations=self.urgent_escalations(as_of),
            latest_nps=self.latest_nps(as_of),
            renewal_date=self.client.renewal_date,
            health=(h.score, h.band, h.as_of) if h else None,
            failed_payments=self.failed_payments_in(as_of, cfg.failed_payment_days),
        )


SHORT_LIST = 500
"""A list of at most this many clients binds its ids (one named client's, a few churned ones)."""


def load_histories(session: Session, clients: list[CsClient], among: Any = None) -> dict[int, History]:
    """Every client's usage, tickets, escalations, NPS, failed payments, MRR changes and health snapshots.

    Each table is read once, for the clients `among` selects — a SQL selectable of client ids the
    list was drawn from (e.g. `health_facts.portfolio_ids(tenant)`); by default one client's id, a
    short list's ids (≤ `SHORT_LIST`), or else the ids of the listed clients' tenants — and the
    rows of clients not listed are skipped. A portfolio binds a constant number of parameters.
    """
    out = {c.id or 0: History(client=c) for c in clients}
    if not out:
        return out
    scope = _matcher(list(out), sorted({c.tenant for c in clients}), among)
    rows = session.exec(
        select(CsUsageEvent.client_id, CsUsageEvent.occurred_at, CsUsageEvent.event, CsUsageEvent.user_ref)
        .where(scope(CsUsageEvent.client_id))
        .order_by(col(CsUsageEvent.occurred_at), col(CsUsageEvent.id))
    )
    for cid, at, event, user in rows:
        if (h := out.get(cid)) is None:
            continue
        h.usage_at.append(at)
        h.usage.append((at, event, user))
        if event == LOGIN:
            h.logins.append(at)
    for cid, at in session.exec(
        select(CsTicket.client_id, CsTicket.created_at).where(scope(CsTicket.client_id))
    ):
        if cid in out:
            out[cid].tickets.append(at)
    for esc in session.exec(select(CsEscalation).where(scope(CsEscalation.client_id))):
        if esc.client_id in out:
            out[esc.client_id].escalations.append(esc)
    for cid, at, score in session.exec(
        select(CsFeedback.client_id, CsFeedback.submitted_at, CsFeedback.score)
        .where(scope(CsFeedback.client_id), CsFeedback.kind == "nps", col(CsFeedback.score).is_not(None))
        .order_by(col(CsFeedback.submitted_at), col(CsFeedback.id))
    ):
        # The query keeps scored rows only; the check narrows `int | None` to `int`.
        if score is not None and cid in out:
            out[cid].nps.append((at, score))
    for cid, at in session.exec(
        select(CsBillingEvent.client_id, CsBillingEvent.occurred_at)
        .where(scope(CsBillingEvent.client_id), CsBillingEvent.kind == "payment_failed")
        .order_by(col(CsBillingEvent.occurred_at))
    ):
        if cid in out:
            out[cid].failed_payments.append(at)
    for cid, at, amount in session.exec(
        select(CsBillingEvent.client_id, CsBillingEvent.occurred_at, CsBillingEvent.amount_minor)
        .where(scope(CsBillingEvent.client_id), CsBillingEvent.kind == "mrr_change")
        .order_by(col(CsBillingEvent.occurred_at), col(CsBillingEvent.id))
    ):
        if cid in out:
            out[cid].mrr_at.append(at)
            out[cid].mrr.append(amount)
    snapshots = sa_select(  # five columns: SQLModel's select types stop at four
        col(CsHealthSnapshot.client_id),
        col(CsHealthSnapshot.as_of),
        col(CsHealthSnapshot.score),
        col(CsHealthSnapshot.band),
        col(CsHealthSnapshot.computed_at),
    )
    order = (col(CsHealthSnapshot.as_of), col(CsHealthSnapshot.id))
    for cid, *point in session.execute(snapshots.where(scope(CsHealthSnapshot.client_id)).order_by(*order)):
        if cid in out:
            out[cid].health.append(HealthPoint(*point))
    for h in out.values():
        h.tickets.sort()
    return out


def _matcher(ids: list[int], tenants: list[str], among: Any) -> Callable[[Any], ColumnElement[bool]]:
    """The client-id condition `load_histories` reads each table with."""
    if among is not None:
        return lambda column: col(column).in_(among)
    if len(ids) == 1:
        return lambda column: col(column) == ids[0]
    if len(ids) <= SHORT_LIST:
        return lambda column: col(column).in_(ids)
    of_tenants = select(CsClient.id).where(col(CsClient.tenant).in_(tenants))
    return lambda column: col(column).in_(of_tenants)


def live_clients(session: Session, tenant: str, *, include_churned: bool = False) -> list[CsClient]:
    query = select(CsClient).where(CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None))
    if not include_churned:
        query = query.where(CsClient.stage != "churned")
    return list(session.exec(query.order_by(col(CsClient.id))))
