"""Spend caps: never exceeded, not by many small steps, not by concurrent callers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from revops_core.db import Database, upgrade, utcnow
from revops_core.errors import ApprovalRequired, ValidationFailed
from revops_core.guards import CoreSpendLedger, reserve_spend, spend_total
from revops_core.money import money


@pytest.fixture
def capped(make_settings):
    settings = make_settings(spend_cap_campaign_minor=1_000, spend_cap_24h_minor=1_500)
    database = Database(settings)
    upgrade(database)
    yield database
    database.dispose()


def _reserve(db: Database, amount: int, campaign: str | None = "c1", currency: str = "USD", **kw) -> bool:
    try:
        with db.session(write=True) as s:
            reserve_spend(
                s, scope="ads", campaign=campaign, amount=money(amount, currency), settings=db.settings, **kw
            )
    except ApprovalRequired:
        return False
    return True


def _total(db: Database, **kw) -> int:
    with db.session() as s:
        return spend_total(s, settings=db.settings, currency="USD", **kw)


def test_many_small_steps_stop_exactly_at_the_campaign_cap(capped):
    results = [_reserve(capped, 70) for _ in range(30)]
    assert results.count(True) == 14
    assert _total(capped, campaign="c1") == 980
    assert _reserve(capped, 20)  # what is left still fits exactly
    assert _total(capped, campaign="c1") == 1_000


def test_cap_error_names_the_numbers_and_records_nothing(capped):
    assert _reserve(capped, 900)
    with capped.session(write=True) as s, pytest.raises(ApprovalRequired) as info:
        reserve_spend(s, scope="ads", campaign="c1", amount=money(200, "USD"), settings=capped.settings)
    assert "9.00 USD" in info.value.message
    assert "2.00 USD" in info.value.message
    assert "10.00 USD" in info.value.message
    assert info.value.details["cap_minor"] == 1_000
    assert _total(capped) == 900


def test_rolling_24h_cap_spans_campaigns_and_forgets_old_spend(capped):
    now = utcnow()
    assert _reserve(capped, 1_000, campaign="a", now=now - timedelta(hours=25))
    assert _reserve(capped, 1_000, campaign="b", now=now)
    assert not _reserve(capped, 600, campaign="c", now=now)  # 1 000 + 600 > 1 500 within 24 h
    assert _reserve(capped, 500, campaign="c", now=now)
    assert not _reserve(capped, 1, campaign=None, now=now)
    assert _reserve(capped, 1, campaign=None, now=now + timedelta(hours=24, seconds=1))


def test_currencies_are_capped_separately_and_amount_must_be_positive(capped):
    assert _reserve(capped, 1_000, currency="USD")
    assert _reserve(capped, 1_000, currency="EUR")
    with capped.session(write=True) as s, pytest.raises(ValidationFailed) as info:
        reserve_spend(s, scope="ads", campaign="c1", amount=money(0, "USD"), settings=capped.settings)
    assert info.value.field == "amount"


def test_concurrent_reservations_never_exceed_the_cap(make_settings):
    settings = make_settings(spend_cap_campaign_minor=1_000, spend_cap_24h_minor=10_000)
    database = Database(settings)
    upgrade(database)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: _reserve(database, 30), range(60)))
        assert results.count(True) == 1_000 // 30
        with database.session() as s:
            assert s.exec(select(func.sum(CoreSpendLedger.amount_minor))).one() == (1_000 // 30) * 30
    finally:
        database.dispose()
