"""The one clock the engine, the worker and SpiffWorkflow's timers all read.

SpiffWorkflow's timer events call ``datetime.now(timezone.utc)`` inside its own module; we point that
module's ``datetime`` name at a subclass whose ``now`` asks this clock, so a test that moves the clock moves
every timer with it. Naive timer dates are read in the configured zone (Asia/Shanghai), not the host's.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer

LOCAL_ZONE = ZoneInfo('Asia/Shanghai')


class Clock:
    """Wall-clock time in UTC; subclasses may freeze or move it."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        return datetime.now(UTC)

    def today(self) -> date:
        """Return today's date in the local (Asia/Shanghai) calendar."""
        return self.now().astimezone(LOCAL_ZONE).date()


class FrozenClock(Clock):
    """A clock that only moves when told to (tests, simulations).

    :param start: the initial instant (timezone-aware)
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError('FrozenClock needs a timezone-aware start')
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (timezone-aware)."""
        with self._lock:
            self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta``."""
        with self._lock:
            self._now = self._now + delta


_current: Clock = Clock()


def get_clock() -> Clock:
    """Return the clock in force for this process."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` for the whole process and return the previous one."""
    global _current
    previous, _current = _current, clock
    return previous


def now() -> datetime:
    """Shorthand for ``get_clock().now()``."""
    return _current.now()


class _ClockedDatetime(datetime):
    """``datetime`` whose ``now()`` reads the engine clock; only SpiffWorkflow's timer module sees it."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _ClockedDatetime:
        # SpiffWorkflow always asks for an aware UTC time; answer aware even if it ever does not.
        return cls.fromtimestamp(_current.now().timestamp(), tz or UTC)


_spiff_timer.datetime = _ClockedDatetime
_spiff_timer.LOCALTZ = LOCAL_ZONE
