"""The waterfall replay reconciles for any history (property test) and counts each flow once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from revops_sales.analytics.waterfall import DealHistory, Event, replay

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LAST_DAY = date(2026, 1, 31)
days = st.integers(min_value=0, max_value=60).map(lambda d: T0 + timedelta(days=d))
close_dates = st.none() | st.integers(min_value=0, max_value=60).map(
    lambda d: date(2026, 1, 1) + timedelta(days=d)
)
events = st.one_of(
    st.builds(Event, days, st.just("stage"), st.sampled_from(["open", "won", "lost"])),
    st.builds(Event, days, st.just("amount"), st.integers(min_value=0, max_value=10_000)),
    st.builds(Event, days, st.just("close_date"), close_dates),
)
histories = st.builds(
    DealHistory,
    created_at=days,
    amount=st.integers(min_value=0, max_value=10_000),
    close_date=close_dates,
    status=st.sampled_from(["open", "won", "lost"]),
    events=st.lists(events, max_size=6),
)


@given(st.lists(histories, max_size=8))
def test_start_plus_inflows_minus_outflows_is_the_end(deals: list[DealHistory]) -> None:
    # Events before a deal's creation cannot happen; drop them the way the database never has them.
    for deal in deals:
        deal.events = [e for e in deal.events if e.at >= deal.created_at]
    result = replay(deals, since=T0 + timedelta(days=10), until=T0 + timedelta(days=31), last_day=LAST_DAY)
    assert result.reconciles(), result
    assert all(value >= 0 for value in result.flows.values())


def test_a_deal_won_after_being_pushed_out_counts_only_as_pushed_out() -> None:
    deal = DealHistory(
        created_at=T0,
        amount=500,
        close_date=date(2026, 1, 20),
        status="open",
        events=[
            Event(T0 + timedelta(days=12), "close_date", date(2026, 3, 1)),
            Event(T0 + timedelta(days=14), "stage", "won"),
        ],
    )
    result = replay([deal], since=T0 + timedelta(days=10), until=T0 + timedelta(days=31), last_day=LAST_DAY)
    assert (result.start, result.flows["pushed_out"], result.flows["won"], result.end) == (500, 500, 0, 0)
