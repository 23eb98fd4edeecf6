"""The event outbox on real databases (and real Redis for wake-ups)."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func
from sqlmodel import select

from revops_core.audit import AUDIT_LOCK_KEY
from revops_core.events import (
    Event,
    claim,
    consume,
    event_waiter,
    last_event_id,
    offset_of,
    publish,
    wait_for_events,
)
from revops_core.models import CoreCompany
from revops_core.testing import redis_url


def _publish(db, topic: str, payload: dict, **kw) -> int:
    with db.session(write=True) as s:
        return publish(s, topic, payload, source="test", **kw)


class _Abort(Exception):
    """Raised to roll a transaction back on purpose."""


def _rolled_back(db, work) -> None:
    """Run `work(session)` in a write transaction that then rolls back."""
    try:
        with db.session(write=True) as s:
            work(s)
            raise _Abort
    except _Abort:
        pass


def _collect(db, consumer: str, **kw) -> list[Event]:
    seen: list[Event] = []
    consume(db, consumer, seen.append, **kw)
    return seen


def test_rolled_back_events_are_never_seen(db):
    _rolled_back(db, lambda s: publish(s, "cs.client.created", {"id": 1}, source="cs"))
    kept = _publish(db, "cs.client.created", {"id": 2}, key="cs_client:2")
    seen = _collect(db, "sales")
    assert [(e.id, e.payload, e.key, e.source) for e in seen] == [(kept, {"id": 2}, "cs_client:2", "test")]
    assert offset_of(db, "sales") == kept


def test_handler_failure_leaves_the_offset_and_the_event_is_redelivered(db):
    first = _publish(db, "t", {"n": 1})
    second = _publish(db, "t", {"n": 2})
    calls: list[int] = []

    def flaky(event: Event) -> None:
        calls.append(event.id)
        event.session.add(CoreCompany(name=f"from-event-{event.id}"))  # written with the offset
        if event.id == second and calls.count(second) == 1:
            raise ValueError("handler failed")

    with pytest.raises(ValueError):
        consume(db, "cs", flaky)
    assert offset_of(db, "cs") == first
    assert consume(db, "cs", flaky) == 1
    assert calls == [first, second, second]
    assert offset_of(db, "cs") == second
    with db.session() as s:
        names = sorted(c.name for c in s.exec(select(CoreCompany)))
    assert names == [f"from-event-{first}", f"from-event-{second}"]  # the failed attempt left nothing
    assert consume(db, "cs", flaky) == 0


def test_two_consumers_each_get_every_event_and_topics_filter(db):
    ids = [_publish(db, topic, {"i": i}) for i, topic in enumerate(["a", "b", "a", "c"])]
    assert [e.id for e in _collect(db, "one")] == ids
    assert [e.id for e in _collect(db, "two")] == ids
    assert [e.id for e in _collect(db, "only-a", topics=["a"])] == [ids[0], ids[2]]
    assert _collect(db, "one") == []


def test_batches_resume_where_they_stopped(db):
    ids = [_publish(db, "t", {"i": i}) for i in range(5)]
    assert [e.id for e in _collect(db, "c", batch=2)] == ids[:2]
    assert [e.id for e in _collect(db, "c", batch=2)] == ids[2:4]
    assert [e.id for e in _collect(db, "c", batch=10)] == ids[4:]


def test_claim_makes_handlers_idempotent(db):
    event_id = _publish(db, "t", {})
    with db.session(write=True) as s:
        assert claim(s, "mailer", event_id) is True
        assert claim(s, "mailer", event_id) is False
        assert claim(s, "other", event_id) is True
    _rolled_back(db, lambda s: claim(s, "rolled-back", event_id))
    with db.session(write=True) as s:
        assert claim(s, "rolled-back", event_id) is True  # the rolled-back claim left nothing
        assert claim(s, "mailer", event_id) is False


def test_bad_consumer_name_is_rejected(db):
    from revops_core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        consume(db, "", lambda e: None)
    assert info.value.field == "consumer"


def test_local_polling_wakes_on_a_new_event(db):
    baseline = last_event_id(db)
    assert wait_for_events(db.settings, 0.1, db=db, after_id=baseline) is False
    woke: list[bool] = []
    waiter = threading.Thread(
        target=lambda: woke.append(wait_for_events(db.settings, 30, db=db, after_id=baseline))
    )
    waiter.start()
    _publish(db, "t", {})
    waiter.join()
    assert woke == [True]


def test_redis_wakeup_after_commit_only(make_settings):
    from revops_core.db import Database, upgrade

    settings = make_settings(redis_url=redis_url(), tenant=f"t{uuid.uuid4().hex[:12]}")
    database = Database(settings)
    upgrade(database)
    try:
        with event_waiter(settings) as waiter:
            _rolled_back(
                database,
                lambda s: publish(s, "t", {}, source="test", tenant=settings.tenant, settings=settings),
            )
            assert waiter.wait(0.2) is False  # a rolled-back publish wakes nobody
            with database.session(write=True) as s:
                publish(s, "t", {}, source="test", tenant=settings.tenant, settings=settings)
                publish(s, "t", {}, source="test", tenant=settings.tenant, settings=settings)
            assert waiter.wait(30) is True
        with database.session() as s:
            from revops_core.events import CoreEvent

            assert s.exec(select(func.count()).select_from(CoreEvent)).one() == 2
    finally:
        database.dispose()


def test_postgres_events_become_visible_in_id_order(db):
    # Without the publish lock, a later id could commit first, the consumer's offset would pass the
    # earlier id, and that event would be lost when it committed.
    if db.dialect != "postgresql":
        pytest.skip("SQLite has a single writer; the ordering race is PostgreSQL's")
    first_tx = db.session(write=True)
    session = first_tx.__enter__()
    first = publish(session, "t", {"n": 1}, source="test")
    ids: list[int] = []
    second = threading.Thread(target=lambda: ids.append(_publish(db, "t", {"n": 2})))
    second.start()
    _wait_for_blocked_advisory_lock(db)
    assert _collect(db, "c") == []  # the second publisher waits for the first to commit
    first_tx.__exit__(None, None, None)
    second.join()
    assert [e.id for e in _collect(db, "c")] == [first, ids[0]]
    assert first < ids[0]


def _wait_for_blocked_advisory_lock(db) -> None:
    from sqlalchemy import text

    for _ in range(500):
        with db.engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k AND NOT granted"
                ),
                {"k": AUDIT_LOCK_KEY},
            ).scalar()
        if waiting:
            return
        threading.Event().wait(0.02)
    raise AssertionError("the second publisher never waited for the lock")
