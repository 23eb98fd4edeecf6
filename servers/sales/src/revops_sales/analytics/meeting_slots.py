"""Free slots for a meeting: working-hour windows minus everyone's busy time (pure, no I/O).

Candidate slots start on a fixed grid (`step`) inside each working day's window, in the given time
zone; a slot is free when it overlaps nobody's busy interval (touching ends do not overlap).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]


def working_windows(
    first: date, last: date, *, day_start: time, day_end: time, zone: ZoneInfo, weekdays: Iterable[int]
) -> list[Interval]:
    """Each working day's [start, end) between `first` and `last` (inclusive), in UTC."""
    days = set(weekdays)
    out: list[Interval] = []
    day = first
    while day <= last:
        if day.weekday() in days:
            start = datetime.combine(day, day_start, zone).astimezone(UTC)
            end = datetime.combine(day, day_end, zone).astimezone(UTC)
            out.append((start, end))
        day += timedelta(days=1)
    return out


def free_slots(
    windows: list[Interval],
    busy: Iterable[Interval],
    *,
    duration: timedelta,
    step: timedelta,
    not_before: datetime,
    top: int,
) -> list[Interval]:
    """The first `top` slots of `duration` on the `step` grid of each window that overlap no busy time."""
    taken = sorted(busy)
    out: list[Interval] = []
    for window_start, window_end in windows:
        slot = window_start
        while slot + duration <= window_end and len(out) < top:
            end = slot + duration
            if slot >= not_before and not any(b_start < end and slot < b_end for b_start, b_end in taken):
                out.append((slot, end))
            slot += step
    return out
