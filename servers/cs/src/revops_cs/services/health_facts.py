"""The stored facts a health score is computed from, gathered for one client or a whole portfolio.

Each component's facts come from one aggregate query (`GROUP BY client_id`) over the clients in
scope, so scoring 10 000 clients costs a handful of queries rather than six per client. The
single-client path runs the very same queries with a one-client scope, which is what guarantees
that a portfolio recompute and a per-client score agree.

The scope is a SQL condition on the client id (`= :id`, or `IN (SELECT id FROM cs_client …)`),
never a list of ids: a portfolio of any size binds a constant number of parameters.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, and_, case, func
from sqlmodel import Session, col, select

from revops_core.params import end_of_day, start_of_day
from revops_cs.models.clients import CsClient
from revops_cs.models.feedback import CsFeedback
from revops_cs.models.retention import CsBillingEvent
from revops_cs.models.support import CsTicket
from revops_cs.models.usage import CsFeature, CsUsageEvent
from revops_cs.services.health_settings import HealthSettings


@dataclass(frozen=True)
class Scope:
    """Which clients to gather for: one client (`client_id`) or a tenant's live, non-churned ones."""

    tenant: str
    client_id: int | None = None

    def matches(self, client_column: Any) -> ColumnElement[bool]:
        if self.client_id is not None:
            return col(client_column) == self.client_id
        return col(client_column).in_(portfolio_ids(self.tenant))

    def clients(self, session: Session) -> list[ScoredClient]:
        """The clients in scope, by id: only the columns a score reads (no ORM objects to build)."""
        columns = [col(getattr(CsClient, name)) for name in ScoredClient._fields]
        query = select(*columns).where(self.matches(CsClient.id)).order_by(col(CsClient.id))
        return [ScoredClient(*row) for row in session.exec(query)]


class ScoredClient(NamedTuple):
    """What a health score reads of a client (a `CsClient` has the same attributes)."""

    id: int
    name: str
    tier: str
    seats_purchased: int | None
    renewal_date: date | None


class Scorable(Protocol):
    """A client as the scorer sees it: a `ScoredClient` row or a `CsClient`."""

    @property
    def id(self) -> int | None: ...
    @property
    def tier(self) -> str: ...
    @property
    def seats_purchased(self) -> int | None: ...
    @property
    def renewal_date(self) -> date | None: ...


def portfolio_ids(tenant: str) -> Any:
    """SQL: ids of the tenant's live clients that have not churned (`services.clients.portfolio`)."""
    return select(CsClient.id).where(
        CsClient.tenant == tenant, col(CsClient.deleted_at).is_(None), CsClient.stage != "churned"
    )


@dataclass
class ClientFacts:
    """One client's inputs; zero / None / empty where nothing is stored."""

    usage_events_ever: int = 0
    active_users: int = 0
    last_login: datetime | None = None
    tickets_opened: int = 0
    nps_scores: list[int] = field(default_factory=list)
    used_features: set[str] = field(default_factory=set)
    billing_events_ever: int = 0
    failed_payments: int = 0


@dataclass
class Facts:
    """Per-client facts plus the tenant-wide ones some components need."""

    clients: dict[int, ClientFacts]
    tickets_recorded: bool
    """Whether the tenant has any ticket before the as-of date (zero tickets is evidence only then)."""
    catalogue: list[tuple[str, list[str]]]
    """The feature catalogue: (key, eligible tiers; empty = every tier), by key."""

    def of(self, client_id: int) -> ClientFacts:
        return self.clients.get(client_id) or ClientFacts()

    def eligible_features(self, tier: str) -> list[str]:
        return [key for key, tiers in self.catalogue if not tiers or tier in tiers]


def window(as_of: date, days: int) -> tuple[datetime, datetime]:
    """[start of the first day, end of `as_of`) for a window of `days` days ending on `as_of`."""
    return start_of_day(as_of - timedelta(days=days - 1)), end_of_day(as_of)


def gather(session: Session, scope: Scope, as_of: date, hs: HealthSettings) -> Facts:
    """Every component's facts for the clients in `scope`, as of the end of `as_of`."""
    per_client: dict[int, ClientFacts] = defaultdict(ClientFacts)
    catalogue = _catalogue(session, scope.tenant)
    _usage(session, scope, as_of, hs, [key for key, _ in catalogue], per_client)
    _tickets(session, scope, as_of, hs, per_client)
    _nps(session, scope, as_of, hs, per_client)
    _billing(session, scope, as_of, hs, per_client)
    return Facts(
        clients=dict(per_client),
        tickets_recorded=_tickets_recorded(session, scope.tenant, as_of),
        catalogue=catalogue,
    )


def _usage(
    session: Session,
    scope: Scope,
    as_of: date,
    hs: HealthSettings,
    keys: list[str],
    out: dict[int, ClientFacts],
) -> None:
    """Two reads of the usage events, each index-only: counts per (client, feature) — the events
    ever and the catalogue features used, from one scan — then logins: the last one and the
    distinct users in the usage window (distinct counts do not add up across features)."""
    start, upper = window(as_of, hs.usage_window_days)
    catalogue = set(keys)
    per_feature = (
        select(CsUsageEvent.client_id, CsUsageEvent.feature, func.count())
        .where(scope.matches(CsUsageEvent.client_id), CsUsageEvent.occurred_at < upper)
        .group_by(col(CsUsageEvent.client_id), col(CsUsageEvent.feature))
    )
    for client_id, feature, n in session.exec(per_feature):
        facts = out[client_id]
        facts.usage_events_ever += int(n)
        if feature in catalogue:
            facts.used_features.add(feature)
    in_window = case((col(CsUsageEvent.occurred_at) >= start, col(CsUsageEvent.user_ref)))
    logins = (
        select(
            CsUsageEvent.client_id, func.count(func.distinct(in_window)), func.max(CsUsageEvent.occurred_at)
        )
        .where(
            scope.matches(CsUsageEvent.client_id),
            CsUsageEvent.event == "login",
            CsUsageEvent.occurred_at < upper,
        )
        .group_by(col(CsUsageEvent.client_id))
    )
    for client_id, active, last_login in session.exec(logins):
        facts = out[client_id]
        facts.active_users, facts.last_login = int(active), last_login


def _tickets(
    session: Session, scope: Scope, as_of: date, hs: HealthSettings, out: dict[int, ClientFacts]
) -> None:
    start, end = window(as_of, hs.support_window_days)
    query = (
        select(CsTicket.client_id, func.count())
        .where(scope.matches(CsTicket.client_id), CsTicket.created_at >= start, CsTicket.created_at < end)
        .group_by(col(CsTicket.client_id))
    )
    for client_id, n in session.exec(query):
        out[client_id].tickets_opened = int(n)


def _tickets_recorded(session: Session, tenant: str, as_of: date) -> bool:
    first = session.exec(
        select(CsTicket.id)
        .join(CsClient, col(CsClient.id) == col(CsTicket.client_id))
        .where(CsClient.tenant == tenant, CsTicket.created_at < end_of_day(as_of))
        .limit(1)
    ).first()
    return first is not None


def _nps(
    session: Session, scope: Scope, as_of: date, hs: HealthSettings, out: dict[int, ClientFacts]
) -> None:
    start, end = window(as_of, hs.sentiment_window_days)
    query = (
        select(CsFeedback.client_id, CsFeedback.score)
        .where(
            scope.matches(CsFeedback.client_id),
            CsFeedback.kind == "nps",
            col(CsFeedback.score).is_not(None),
            CsFeedback.submitted_at >= start,
            CsFeedback.submitted_at < end,
        )
        .order_by(col(CsFeedback.id))
    )
    for client_id, score in session.exec(query):
        if client_id is not None and score is not None:
            out[client_id].nps_scores.append(int(score))


def _billing(
    session: Session, scope: Scope, as_of: date, hs: HealthSettings, out: dict[int, ClientFacts]
) -> None:
    start, upper = window(as_of, hs.payment_window_days)
    failed_in_window = and_(
        col(CsBillingEvent.kind) == "payment_failed", col(CsBillingEvent.occurred_at) >= start
    )
    query = (
        select(CsBillingEvent.client_id, func.count(), func.sum(case((failed_in_window, 1), else_=0)))
        .where(scope.matches(CsBillingEvent.client_id), CsBillingEvent.occurred_at < upper)
        .group_by(col(CsBillingEvent.client_id))
    )
    for client_id, events, failed in session.exec(query):
        facts = out[client_id]
        facts.billing_events_ever, facts.failed_payments = int(events), int(failed or 0)


def _catalogue(session: Session, tenant: str) -> list[tuple[str, list[str]]]:
    rows = session.exec(
        select(CsFeature.key, CsFeature.tiers).where(CsFeature.tenant == tenant).order_by(col(CsFeature.key))
    )
    return [(key, json.loads(tiers)) for key, tiers in rows]
