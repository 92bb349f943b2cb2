"""Working-day calendar overrides and pausable case clocks."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr
from engine.errors import Conflict

if TYPE_CHECKING:
    from engine.models.cases import Case
    from engine.models.org_units import OrgUnit
    from engine.models.users import User

_GLOBAL = sa.text('org_unit_id IS NULL')

#: units a case clock may count in (a pause is counted in days)
CLOCK_UNITS = ('working_days', 'calendar_days')
CLOCK_STATUSES = ('running', 'paused', 'stopped')


class CalendarOverride(Base):
    """A day whose working/rest status differs from ``chinesecalendar``'s (or is missing from it).

    A global override (no org unit) applies everywhere; one with an org unit applies to that unit and
    everything below it, and wins over a global one for the same day.
    """

    __tablename__ = 'calendar_overrides'
    __table_args__ = (
        sa.UniqueConstraint('day', 'org_unit_id'),
        # NULLs never collide in a unique constraint: a partial index keeps one global row per day.
        sa.Index('uq_calendar_overrides_day_global', 'day', unique=True,
                 postgresql_where=_GLOBAL, sqlite_where=_GLOBAL),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the day (Asia/Shanghai calendar)
    day: Mapped[date] = mapped_column(index=True, nullable=False)
    #: True: a working day (e.g. an extra 调休 day); False: a rest day (e.g. a local holiday, a closure)
    is_workday: Mapped[bool] = mapped_column(nullable=False)
    #: the unit whose subtree it applies to; None for everywhere
    org_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=True)
    #: why, e.g. the notice that announced it
    note: Mapped[str] = mapped_column(sa.Text, nullable=False, default='')
    #: who entered it (None for the system)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when it was entered or last changed
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    org_unit: Mapped[OrgUnit | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'day', 'is_workday', org_unit_id=None)


class CaseClock(Base):
    """A named legal period of a case that can pause and be extended (调解 30 个工作日, 鉴定期间不计入).

    Change its state only through :meth:`pause`, :meth:`resume` and :meth:`stop` (see
    :mod:`engine.clocks`, which also recomputes ``due_dt``).
    """

    __tablename__ = 'case_clocks'
    __table_args__ = (
        sa.UniqueConstraint('case_id', 'name'),
        sa.CheckConstraint(f"unit IN ({', '.join(repr(u) for u in CLOCK_UNITS)})", name='valid_unit'),
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in CLOCK_STATUSES)})", name='valid_status'),
        sa.CheckConstraint('length >= 0', name='non_negative_length'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the case it runs for
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=False)
    #: name tasks refer to in their ``clock`` property, e.g. ``mediation``
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: the period's length, in ``unit``
    length: Mapped[int] = mapped_column(nullable=False)
    #: working_days / calendar_days
    unit: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: the day of the legal start event (not counted)
    start_on: Mapped[date] = mapped_column(nullable=False)
    #: words for the start event, e.g. 受理
    from_label: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    #: the article, e.g. 医疗纠纷预防和处理条例 §38
    basis: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    #: running / paused / stopped — change it only through the transition methods
    _status: Mapped[str] = mapped_column('status', sa.String(16), nullable=False, default='running')
    #: the day the current pause began (counted as a day of the period); None unless paused
    paused_since: Mapped[date | None] = mapped_column(nullable=True)
    #: finished pauses as ``[[from, to], ...]`` ISO dates; the days after ``from`` up to ``to`` do not count
    pauses: Mapped[list[list[str]]] = mapped_column(sa.JSON, nullable=False, default=list)
    #: the agreed new due day, replacing the computed one
    extended_due_on: Mapped[date | None] = mapped_column(nullable=True)
    #: the day the extension was agreed (later pauses move the agreed day)
    extended_on: Mapped[date | None] = mapped_column(nullable=True)
    #: why it was extended
    extension_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: the current due time; None while paused
    due_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: how ``due_dt`` was computed (as on a task's ``due_rule``)
    due_rule: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    #: when it was started
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: when it was stopped
    stopped_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    case: Mapped[Case] = relationship()

    @property
    def status(self) -> str:
        """running, paused or stopped."""
        return self._status

    def pause(self, on: date) -> None:
        """Stop counting after ``on``; ``on`` itself still counts."""
        if self._status != 'running':
            raise Conflict(f'期限“{self.name}”不在计时中，无法暂停。')
        self._status, self.paused_since = 'paused', on

    def resume(self, on: date) -> None:
        """Count again from the day after ``on`` (the resume day is not counted)."""
        if self._status != 'paused' or self.paused_since is None:
            raise Conflict(f'期限“{self.name}”未暂停，无法恢复。')
        if on < self.paused_since:
            raise Conflict(f'期限“{self.name}”的恢复日期早于暂停日期。')
        self.pauses = [*self.pauses, [self.paused_since.isoformat(), on.isoformat()]]
        self._status, self.paused_since = 'running', None

    def stop(self, on: date, when: datetime) -> None:
        """End the clock for good (the stage it measured is over); a running pause ends ``on``."""
        if self._status == 'stopped':
            raise Conflict(f'期限“{self.name}”已停止。')
        if self._status == 'paused' and self.paused_since is not None:
            self.pauses = [*self.pauses, [self.paused_since.isoformat(), on.isoformat()]]
        self._status, self.paused_since, self.stopped_dt = 'stopped', None, when

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', 'name', status='running')
