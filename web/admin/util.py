"""Helpers of the admin pages: the calendar's coverage warning in the reader's language, listing overrides, the
account and role pages' choices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Session, joinedload

from engine.calendar import COVERED_YEARS, PACKAGE_VERSION, coverage_warning, uncovered_years
from engine.clock import get_clock
from engine.directory import is_locked, units_within
from engine.errors import NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.calendar import CalendarOverride
from engine.models.org_units import OrgUnit
from engine.models.users import Group, User
from web.core.templating import list_separator
from web.tasks.util import Choice

#: years offered around the shown one in the year picker
YEAR_SPAN = 2


def calendar_notice(today: date | None = None) -> str | None:
    """``engine.calendar.coverage_warning()`` in the reader's language; None while it has nothing to say."""
    today = today or get_clock().today()
    if coverage_warning(today) is None:
        return None
    years = list_separator().join(str(y) for y in uncovered_years((today.year, today.year + 1)))
    return gettext('工作日历：chinesecalendar %(version)s 仅含 %(first)s–%(last)s 年的法定节假日与调休数据，'
                   '%(years)s 年暂按周一至周五加人工调整计算。请在国务院办公厅放假通知发布后升级 chinesecalendar，'
                   '或在“工作日历”中录入该年的节假日与调休。', version=PACKAGE_VERSION, first=COVERED_YEARS.start,
                   last=COVERED_YEARS.stop - 1, years=years)


def coverage_text() -> str:
    """What the statutory calendar rests on, for the page's lead paragraph."""
    return gettext('法定节假日与调休取自 chinesecalendar %(version)s（%(first)s–%(last)s 年）。',
                   version=PACKAGE_VERSION, first=COVERED_YEARS.start, last=COVERED_YEARS.stop - 1)


def parse_year(raw: str | None) -> int:
    """The ``year`` query argument, this year when absent."""
    if not raw:
        return get_clock().today().year
    if not raw.isdigit() or not 1900 <= int(raw) <= 2200:
        raise ValidationFailed('数据有误', {'year': [N_('年份无效。')]})
    return int(raw)


def year_of(day_text: str | None) -> int:
    """The year of a typed day (``2026-10-01``), this year if it has none: which year to show after an error."""
    head = (day_text or '')[:4]
    return int(head) if head.isdigit() and 1900 <= int(head) <= 2200 else get_clock().today().year


def list_overrides(session: Session, year: int) -> list[CalendarOverride]:
    """The overrides of ``year``, by day, global ones before a unit's, with their units and authors."""
    return list(session.scalars(
        sa.select(CalendarOverride)
        .options(joinedload(CalendarOverride.org_unit), joinedload(CalendarOverride.created_by))
        .where(CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))
        .order_by(CalendarOverride.day, CalendarOverride.org_unit_id.is_not(None), CalendarOverride.id)))


def year_choices(session: Session, shown: int) -> list[int]:
    """The years the picker offers: those with overrides, this year and next, and a few around ``shown``."""
    first, last = session.execute(sa.select(sa.func.min(CalendarOverride.day), sa.func.max(CalendarOverride.day))).one()
    this_year = get_clock().today().year
    years = {shown + offset for offset in range(-YEAR_SPAN, YEAR_SPAN + 1)} | {this_year, this_year + 1}
    if first is not None and last is not None:
        years |= set(range(first.year, last.year + 1))
    return sorted(years)


def get_override(session: Session, override_id: int) -> CalendarOverride:
    """One override, or NotFound."""
    row = session.get(CalendarOverride, override_id)
    if row is None:
        raise NotFound(N_('该日期没有节假日调整'))
    return row


def unit_by_code(session: Session, code: str | None) -> OrgUnit | None:
    """The org unit an override is limited to (None: everywhere).

    :raise ValidationFailed: no unit has that code (the error stands beside the code's field)
    """
    if not code:
        return None
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    if unit is None:
        raise ValidationFailed('数据有误，请检查标出的字段。', {'org_unit': [N_('没有这个代码的机构。')]})
    return unit


@dataclass(frozen=True)
class UnitChoice:
    """An org unit offered in the override form's list of codes."""

    code: str
    name: str


def unit_choices(session: Session) -> list[UnitChoice]:
    """Every unit, in tree order, for the code field's suggestions."""
    rows = session.execute(sa.select(OrgUnit.code, OrgUnit.name).order_by(OrgUnit.path)).all()
    return [UnitChoice(code, name) for code, name in rows]


# -- 用户管理 and 角色权限 ---------------------------------------------------------------------------------------

def scoped_unit_choices(session: Session, paths: tuple[str, ...]) -> list[Choice]:
    """The units an administrator may pick (their subtrees), each indented under its parent."""
    units = units_within(session, paths)
    top = min((unit.path.count('/') for unit in units), default=0)
    return [Choice(unit.code, '\u3000' * (unit.path.count('/') - top) + f'{unit.name}（{unit.code}）')
            for unit in units]


def group_choices(session: Session) -> list[Choice]:
    """Every role that can be granted, by code, named in words."""
    return [Choice(group.code, f'{group.name}（{group.code}）')
            for group in session.scalars(sa.select(Group).order_by(Group.code))]


def account_state(user: User) -> str:
    """停用 / 已锁定 / 正常, in the reader's language."""
    if not user.is_active:
        return gettext('已停用')
    if is_locked(user):
        return gettext('已锁定')
    return gettext('正常')
