"""An injectable clock, so retry, breaker and rate-limit logic is tested in fake time.

Two readings of time are needed: `monotonic()` for local deadlines (never jumps), and `time()` (epoch
seconds) for state shared between processes through Redis, where each process's monotonic origin
differs. `sleep()` is the only way resilience code waits, so a fake clock sees every wait.
"""

from __future__ import annotations

import time as _time
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel


@runtime_checkable
class Clock(Protocol):
    """Time source and sleeper used by `revops_core.resilience` and `revops_core.integration`."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for local deadlines)."""
        ...

    def time(self) -> float:
        """Epoch seconds (for state shared across processes)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (or pretend to)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to: `sleep()` records the wait and advances time at once.

    `sleeps` lists every requested wait in order, so a test can assert "waited exactly 7 s" without
    waiting at all. `advance()` moves time without recording a sleep (e.g. "the lease expired").
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._offset = 0.0
        self._epoch = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._offset

    def time(self) -> float:
        return self._epoch + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._offset += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self._offset += seconds
        # Yield to the loop like a real sleep would, so concurrent tasks interleave.
        await anyio.lowlevel.checkpoint()


SYSTEM_CLOCK: Clock = SystemClock()
