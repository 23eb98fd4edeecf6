"""The suite's event outbox: servers talk to each other through `core_event`, never through tables.

- `publish` inserts an event in the caller's transaction: a rolled-back change never emits its event.
  On PostgreSQL it takes the same transaction lock as the audit log, so event ids become visible in
  id order (a consumer's offset can never jump over an event that commits late).
- `consume` delivers events after a consumer's offset, one transaction per event: the handler runs
  and the offset advances together, so delivery is at-least-once (a failing handler leaves the
  offset; the event comes again). A handler may write in that transaction through `event.session`.
- `claim` records `(consumer, event_id)` once, for handlers whose effects live outside that
  transaction (vendor calls) and must not repeat.
- Wake-ups: after a publishing transaction commits, a Redis message (when configured) wakes
  `wait_for_events`; without Redis, `wait_for_events` polls the table with backoff.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, PrivateAttr
from pydantic_core import to_jsonable_python
from sqlalchemy import Column, Index, Text, UniqueConstraint, func, text
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, col, select

from revops_core.audit import AUDIT_LOCK_KEY
from revops_core.db import Database, utc_field, utcnow
from revops_core.errors import ValidationFailed
from revops_core.logs import get_logger

if TYPE_CHECKING:
    from revops_core.settings import Settings

log = get_logger("revops.events")

_SETTINGS_INFO_KEY = "revops_settings"
_NOTIFY_INFO_KEY = "revops_event_notify"


class CoreEvent(SQLModel, table=True):
    __tablename__ = "core_event"
    __table_args__ = (Index("ix_core_event_tenant_id", "tenant", "id"),)

    id: int | None = SQLField(default=None, primary_key=True)
    tenant: str = SQLField(default="default", max_length=64)
    topic: str = SQLField(max_length=200, index=True)
    payload: str = SQLField(sa_column=Column(Text, nullable=False))
    source: str = SQLField(max_length=100)
    key: str | None = SQLField(default=None, max_length=200)
    created_at: datetime = utc_field(default_now=True)


class CoreEventOffset(SQLModel, table=True):
    __tablename__ = "core_event_offset"

    tenant: str = SQLField(default="default", max_length=64, primary_key=True)
    consumer: str = SQLField(max_length=100, primary_key=True)
    last_id: int = 0
    updated_at: datetime = utc_field(default_now=True)


class CoreEventProcessed(SQLModel, table=True):
    __tablename__ = "core_event_processed"
    __table_args__ = (UniqueConstraint("consumer", "event_id", name="uq_core_event_processed"),)

    id: int | None = SQLField(default=None, primary_key=True)
    consumer: str = SQLField(max_length=100)
    event_id: int
    processed_at: datetime = utc_field(default_now=True)


class Event(BaseModel):
    """One delivered event. `session` is the delivery transaction (commits with the offset)."""

    id: int = Field(description="Outbox id; increases in commit order.")
    topic: str = Field(description="What happened, e.g. 'cs.client.churn_risk'.")
    payload: dict[str, Any] = Field(description="Event data (JSON).")
    source: str = Field(description="The server that published it.")
    key: str | None = Field(default=None, description="Optional entity key, e.g. 'core_company:42'.")
    created_at: datetime = Field(description="When it was published (UTC).")
    _session: Session | None = PrivateAttr(default=None)

    @property
    def session(self) -> Session:
        """The transaction this delivery runs in; writes here commit together with the offset."""
        if self._session is None:
            raise RuntimeError("this event is not being delivered")
        return self._session


Handler = Callable[[Event], None]


def channel(tenant: str) -> str:
    """The Redis channel that wakes consumers of one tenant."""
    return f"revops:{tenant}:events"


# --------------------------------------------------------------------------- publish


def publish(
    session: Session,
    topic: str,
    payload: dict[str, Any],
    *,
    source: str,
    key: str | None = None,
    tenant: str = "default",
    settings: Settings | None = None,
) -> int:
    """Add an event to the outbox in the caller's transaction; returns its id.

    Consumers see it only if the transaction commits. Pass `settings` (or have the session carry
    them in `session.info["revops_settings"]`) to wake Redis waiters after the commit; without them
    consumers still find the event on their next poll.
    """
    if not topic or len(topic) > 200:
        raise ValidationFailed("An event topic must be 1-200 characters.", field="topic")
    body = json.dumps(to_jsonable_python(payload), separators=(",", ":"), sort_keys=True)
    if session.get_bind().dialect.name == "postgresql":
        # The audit lock, not a second one: one lock order for every writer, and ids commit in order.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    row = CoreEvent(tenant=tenant, topic=topic, payload=body, source=source, key=key, created_at=utcnow())
    session.add(row)
    session.flush()
    assert row.id is not None
    _notify_after_commit(session, settings or session.info.get(_SETTINGS_INFO_KEY), tenant)
    return row.id


def _notify_after_commit(session: Session, settings: Settings | None, tenant: str) -> None:
    if settings is None or not settings.redis_url or session.info.get(_NOTIFY_INFO_KEY):
        return
    session.info[_NOTIFY_INFO_KEY] = True
    url = settings.redis_url

    def notify(committed: Session) -> None:
        committed.info.pop(_NOTIFY_INFO_KEY, None)
        try:
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            try:
                client.publish(channel(tenant), "1")
            finally:
                client.close()
        except Exception as exc:  # the event is committed; a lost wake-up only delays consumers
            log.warning("event_wakeup_failed", error=type(exc).__name__)

    def forget(rolled_back: Session, *_: Any) -> None:
        rolled_back.info.pop(_NOTIFY_INFO_KEY, None)

    sa_event.listen(session, "after_commit", notify, once=True)
    sa_event.listen(session, "after_soft_rollback", forget, once=True)


# --------------------------------------------------------------------------- consume


def consume(
    db: Database,
    consumer: str,
    handler: Handler,
    *,
    topics: list[str] | None = None,
    batch: int = 100,
) -> int:
    """Deliver up to `batch` events after `consumer`'s offset; returns how many were handled.

    Each event runs in its own write transaction together with the offset update. If the handler
    raises, that transaction rolls back, the exception propagates and the event is delivered again
    next time; events handled before it stay handled. Topic-filtered consumers skip other topics.
    """
    if not consumer or len(consumer) > 100:
        raise ValidationFailed("A consumer name must be 1-100 characters.", field="consumer")
    if batch < 1:
        raise ValidationFailed("batch must be at least 1.", field="batch")
    tenant = db.settings.tenant
    _ensure_offset(db, tenant, consumer)
    with db.session() as session:
        start = _offset(session, tenant, consumer, lock=False)
        query = select(CoreEvent).where(col(CoreEvent.tenant) == tenant, col(CoreEvent.id) > start)
        if topics is not None:
            query = query.where(col(CoreEvent.topic).in_(topics))
        rows = list(session.exec(query.order_by(col(CoreEvent.id)).limit(batch)))
    handled = 0
    for row in rows:
        with db.session(write=True) as session:
            # Re-read under a lock: another worker of the same consumer may have handled it meanwhile.
            if _offset(session, tenant, consumer, lock=True) >= (row.id or 0):
                continue
            delivered = _to_event(row)
            delivered._session = session
            try:
                handler(delivered)
            finally:
                delivered._session = None
            offset = session.get(CoreEventOffset, (tenant, consumer))
            assert offset is not None
            offset.last_id = row.id or 0
            offset.updated_at = utcnow()
            session.add(offset)
        handled += 1
    return handled


def _ensure_offset(db: Database, tenant: str, consumer: str) -> None:
    with db.session() as session:
        if session.get(CoreEventOffset, (tenant, consumer)) is not None:
            return
    try:
        with db.session(write=True) as session:
            session.add(CoreEventOffset(tenant=tenant, consumer=consumer, last_id=0))
    except IntegrityError:
        pass  # another worker created it first


def _offset(session: Session, tenant: str, consumer: str, *, lock: bool) -> int:
    query = select(CoreEventOffset.last_id).where(
        CoreEventOffset.tenant == tenant, CoreEventOffset.consumer == consumer
    )
    if lock:
        query = query.with_for_update()
    return int(session.exec(query).first() or 0)


def _to_event(row: CoreEvent) -> Event:
    return Event(
        id=row.id or 0,
        topic=row.topic,
        payload=json.loads(row.payload),
        source=row.source,
        key=row.key,
        created_at=row.created_at,
    )


def claim(session: Session, consumer: str, event_id: int) -> bool:
    """Record that `consumer` processed `event_id`; False if it already had (skip the work then).

    Runs in the caller's transaction, so a rolled-back attempt leaves no claim behind.
    """
    try:
        with session.begin_nested():
            session.add(CoreEventProcessed(consumer=consumer, event_id=event_id))
            session.flush()
    except IntegrityError:
        return False
    return True


def offset_of(db: Database, consumer: str) -> int:
    """The last event id `consumer` has handled (0 when it never ran)."""
    with db.session() as session:
        return _offset(session, db.settings.tenant, consumer, lock=False)


def last_event_id(db: Database) -> int:
    """The newest event id of this tenant (0 when the outbox is empty)."""
    with db.session() as session:
        newest = session.exec(
            select(func.max(CoreEvent.id)).where(CoreEvent.tenant == db.settings.tenant)
        ).one()
        return int(newest or 0)


# --------------------------------------------------------------------------- waiting


class EventWaiter:
    """Subscribed to the tenant's Redis channel from creation, so no wake-up after it is missed."""

    def __init__(self, settings: Settings) -> None:
        import redis

        if not settings.redis_url:
            raise ValidationFailed("Redis wake-ups need REDIS_URL.", field="redis_url")
        self._client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel(settings.tenant))

    def wait(self, timeout: float) -> bool:
        """True when a wake-up arrived within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=left)
            if message is not None and message.get("type") == "message":
                return True
        return False

    def close(self) -> None:
        self._pubsub.close()
        self._client.close()


@contextmanager
def event_waiter(settings: Settings) -> Iterator[EventWaiter]:
    """`with event_waiter(settings) as w: …; w.wait(timeout)` — subscribe before checking the table."""
    waiter = EventWaiter(settings)
    try:
        yield waiter
    finally:
        waiter.close()


def wait_for_events(
    settings: Settings,
    timeout: float,
    *,
    db: Database | None = None,
    after_id: int | None = None,
) -> bool:
    """Block until new events may be there (True) or `timeout` seconds pass (False).

    With Redis: waits for a publish wake-up (and, given `db` and `after_id`, first checks the table so
    an event committed just before subscribing is not missed). Without Redis: polls the table for an
    id above `after_id` (default: the newest id now), backing off from 50 ms to 1 s.
    """
    if settings.redis_url:
        with event_waiter(settings) as waiter:
            if db is not None and after_id is not None and last_event_id(db) > after_id:
                return True
            return waiter.wait(timeout)
    if db is None:
        raise ValidationFailed(
            "Without Redis, waiting for events polls the database: pass db=.",
            field="db",
            hint="Set REDIS_URL for push wake-ups, or pass the Database to poll.",
        )
    baseline = last_event_id(db) if after_id is None else after_id
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if last_event_id(db) > baseline:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 1.0)
