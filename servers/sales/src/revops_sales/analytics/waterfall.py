"""The pipeline waterfall of a period (REFERENCE.md, Sales), replayed from each deal's history.

The pipeline at an instant is the sum of the amounts of deals open at that instant whose close
date (as it was then) falls on or before the period's last day. Every change of a deal in the
period moves that sum by an amount that falls in exactly one category, so

    start + created + increased − decreased + pulled_in + reopened
          − won − lost − pushed_out − removed = end

holds to the minor unit. `pulled_in` (a close date moved into the period, or set) and `reopened`
(a closed deal set open again) are the inflows the REFERENCE list leaves implicit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

EventKind = Literal["stage", "amount", "close_date", "removed"]
INFLOWS = ("created", "increased", "pulled_in", "reopened")
OUTFLOWS = ("decreased", "won", "lost", "pushed_out", "removed")


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: EventKind
    value: object = None
    """stage kind (open/won/lost) | amount (int) | close date (date | None) | None for removed."""


@dataclass
class DealHistory:
    created_at: datetime
    amount: int
    close_date: date | None
    status: str
    """The state the deal was created in, then its later events (any order)."""
    events: list[Event] = field(default_factory=list)


@dataclass
class Waterfall:
    start: int = 0
    end: int = 0
    flows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INFLOWS + OUTFLOWS, 0))
    advanced: int = 0
    """Moves from one open stage to another in the period (they change no amount)."""

    def reconciles(self) -> bool:
        inflow = sum(self.flows[k] for k in INFLOWS)
        outflow = sum(self.flows[k] for k in OUTFLOWS)
        return self.start + inflow - outflow == self.end


@dataclass
class _State:
    amount: int
    close_date: date | None
    status: str
    removed: bool = False

    def value(self, last_day: date) -> int:
        in_scope = (
            not self.removed
            and self.status == "open"
            and self.close_date is not None
            and self.close_date <= last_day
        )
        return self.amount if in_scope else 0


def _apply(state: _State, event: Event) -> str | None:
    """Apply one event; the category of the change it makes, or None for a move between open stages."""
    if event.kind == "removed":
        state.removed = True
        return "removed"
    if event.kind == "amount":
        assert isinstance(event.value, int)
        before, state.amount = state.amount, event.value
        return "increased" if event.value > before else "decreased"
    if event.kind == "close_date":
        assert event.value is None or isinstance(event.value, date)
        state.close_date = event.value
        return "close_date"
    before_status, state.status = state.status, str(event.value)
    if state.status == "open":
        return "reopened" if before_status != "open" else None
    return "won" if state.status == "won" else "lost"


def replay(deals: Iterable[DealHistory], *, since: datetime, until: datetime, last_day: date) -> Waterfall:
    """The waterfall of `[since, until)`: deal states at `since`, then every change up to `until`."""
    result = Waterfall()
    for deal in deals:
        if deal.created_at >= until:
            continue
        state = _State(deal.amount, deal.close_date, deal.status)
        created_in_period = deal.created_at >= since
        if created_in_period:
            result.flows["created"] += state.value(last_day)
        for event in sorted(deal.events, key=lambda e: e.at):
            if event.at >= until:
                break
            before = state.value(last_day)
            category = _apply(state, event)
            if event.at < since:
                continue
            after = state.value(last_day)
            if category is None:
                result.advanced += 1
            elif category == "close_date":
                if after > before:
                    result.flows["pulled_in"] += after - before
                elif before > after:
                    result.flows["pushed_out"] += before - after
            elif category in ("increased", "decreased"):
                result.flows[category] += abs(after - before)
            elif category in ("won", "lost", "removed"):
                result.flows[category] += before - after
            else:  # reopened
                result.flows["reopened"] += after - before
        if not created_in_period:
            result.start += _value_at(deal, since, last_day)
        result.end += state.value(last_day)
    return result


def _value_at(deal: DealHistory, instant: datetime, last_day: date) -> int:
    state = _State(deal.amount, deal.close_date, deal.status)
    for event in sorted(deal.events, key=lambda e: e.at):
        if event.at >= instant:
            break
        _apply(state, event)
    return state.value(last_day)
