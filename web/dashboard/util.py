"""Helpers of the dashboard and ranking pages: whose units, period words, numbers as text, charts, exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine.access import SYSTEM_ADMIN_ROLES, Scope, refuse
from engine.errors import AccessDenied, NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.org_units import OrgUnit
from engine.ranking import MEASURES, RANKING_LEVELS, CountyScore, MeasureScore
from engine.statistics import (
    FIRST_YEAR,
    MSG_INVALID,
    Period,
    StepRow,
    UnitStats,
    month_period,
    parse_period,
    previous_period,
    quarter_period,
    year_period,
)
from web.core.auth import current_scope
from web.core.database import db
from web.core.templating import DASH

MSG_SUPERVISORS_ONLY = N_('只有主管领导可以查看统计。')
MSG_RANKING_ONLY = N_('工作评比仅供市级、省级主管领导查看。')
MSG_WEIGHTS_ONLY = N_('只有市级、省级主管领导或系统管理员可以设置评比权重。')
MSG_NO_UNIT = N_('机构不存在')
MSG_MONTH = N_('请输入 YYYY-MM 格式的月份。')
#: months, quarters and years offered in the period picker
PICKER_MONTHS, PICKER_QUARTERS, PICKER_YEARS = 12, 5, 3
#: heatmap colour steps, in hours: under an hour, 8 hours, a day, 3 days, a week, 15 days, and longer
HEAT_STEPS = (1, 8, 24, 72, 168, 360)
#: the slowest steps drawn in the chart of time per step
CHART_STEPS = 12
COLOURS = ('#1d4f91', '#1a7044', '#c27c0e', '#b42318', '#6b4fa1')


# -- which units -------------------------------------------------------------------------------------------

def unit_by_code(session: Session, code: str) -> OrgUnit:
    """The org unit with ``code``, or NotFound."""
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    if unit is None:
        raise NotFound(MSG_NO_UNIT)
    return unit


def top_units(session: Session, paths: Iterable[str]) -> list[OrgUnit]:
    """The units at ``paths`` (a user's grants), highest first, those below another one left out."""
    unique = sorted(set(paths), key=lambda p: (p.count('/'), p))
    tops = [p for p in unique if not any(p != q and p.startswith(q) for q in unique)]
    if not tops:
        return []
    units = {u.path: u for u in session.scalars(sa.select(OrgUnit).where(OrgUnit.path.in_(tops)))}
    return [units[p] for p in tops if p in units]


def require_supervisor(scope: Scope) -> None:
    """403 for anyone who supervises nothing."""
    if not scope.supervisor_paths:
        raise AccessDenied(MSG_SUPERVISORS_ONLY)


def require_supervised(session: Session, scope: Scope, unit: OrgUnit) -> None:
    """403 for non-supervisors; 404 (and the attempt noted) for a unit outside the caller's supervised subtrees."""
    require_supervisor(scope)
    if not scope.supervises_path(unit.path):
        raise refuse(session, scope.user_id, 'org_unit', unit.code, unit.path, MSG_NO_UNIT)


def require_ranked(session: Session, scope: Scope, unit: OrgUnit) -> None:
    """A city or the province the caller supervises (404 for a county: it has no ranking page)."""
    require_supervised(session, scope, unit)
    if unit.level not in RANKING_LEVELS:
        raise NotFound(MSG_NO_UNIT)


def admin_paths(scope: Scope) -> tuple[str, ...]:
    """Subtrees the user administers."""
    return scope.paths_of(SYSTEM_ADMIN_ROLES)


def require_weights_editor(session: Session, scope: Scope, unit: OrgUnit) -> None:
    """A supervisor of the unit or an administrator above it, for a city or the province."""
    admin = admin_paths(scope)
    if not scope.supervisor_paths and not admin:
        raise AccessDenied(MSG_WEIGHTS_ONLY)
    if not (scope.supervises_path(unit.path) or any(unit.path.startswith(p) for p in admin)):
        raise refuse(session, scope.user_id, 'org_unit', unit.code, unit.path, MSG_NO_UNIT)
    if unit.level not in RANKING_LEVELS:
        raise NotFound(MSG_NO_UNIT)


#: a path of this many slashes or fewer is a city or the province ('/1/' and '/1/4/'): the units that rank
RANKING_DEPTH = 3


def ranking_visible() -> bool:
    """Whether the header links 工作评比: city and province supervisors, and administrators of such units."""
    if not current_user.is_authenticated:
        return False
    try:
        scope = current_scope()
    except SQLAlchemyError:
        db().rollback()
        return False
    paths = (*scope.supervisor_paths, *admin_paths(scope))
    return any(path.count('/') <= RANKING_DEPTH for path in paths)


def breadcrumb(session: Session, scope: Scope, unit: OrgUnit) -> list[OrgUnit]:
    """The unit's ancestors the caller supervises, top first (drill back up), without the unit itself."""
    ids = [int(part) for part in unit.path.strip('/').split('/')[:-1] if part]
    if not ids:
        return []
    units = session.scalars(sa.select(OrgUnit).where(OrgUnit.id.in_(ids)).order_by(OrgUnit.path))
    return [u for u in units if scope.supervises_path(u.path)]


# -- periods in words ----------------------------------------------------------------------------------------

def period_label(period: Period) -> str:
    """``2026年10月``, ``2026年第3季度``, ``2026年``, ``2026-03-05 至 2026-04-02``."""
    if period.kind == 'month':
        return gettext('%(year)s年%(month)s月', year=period.first.year, month=period.first.month)
    if period.kind == 'quarter':
        return gettext('%(year)s年第%(quarter)s季度', year=period.first.year,
                       quarter=(period.first.month - 1) // 3 + 1)
    if period.kind == 'year':
        return gettext('%(year)s年', year=period.first.year)
    return gettext('%(first)s 至 %(last)s', first=period.first.isoformat(), last=period.last.isoformat())


@dataclass(frozen=True)
class PeriodChoice:
    """An option of the period picker."""

    token: str
    label: str


def period_choices(today: date, current: Period) -> list[tuple[str, list[PeriodChoice]]]:
    """The period picker's option groups: recent months, quarters and years (those begun), a custom range.

    The period shown is always among them (an older month typed into the address is added on top).
    """
    months, quarters, years = [], [], []
    month = month_period(today.year, today.month)
    for _ in range(PICKER_MONTHS):
        months.append(PeriodChoice(month.token, period_label(month)))
        month = previous_period('month', month.first)
    quarter = quarter_period(today.year, (today.month - 1) // 3 + 1)
    for _ in range(PICKER_QUARTERS):
        quarters.append(PeriodChoice(quarter.token, period_label(quarter)))
        quarter = previous_period('quarter', quarter.first)
    for year in range(today.year, max(today.year - PICKER_YEARS, FIRST_YEAR - 1), -1):
        years.append(PeriodChoice(str(year), period_label(year_period(year))))
    groups = [(gettext('月度'), months), (gettext('季度'), quarters), (gettext('年度'), years),
              (gettext('自定义'), [PeriodChoice('custom', gettext('自定义起止日期'))])]
    if not any(choice.token == current.token for _, choices in groups for choice in choices):
        groups.insert(0, (gettext('所选期间'), [PeriodChoice(current.token, period_label(current))]))
    return groups


def parse_month(raw: str | None, today: date) -> Period:
    """The ``month`` argument of the ranking (``YYYY-MM``; the previous full month when absent)."""
    text = (raw or '').strip()
    if text and not (len(text) == 7 and text[4] == '-' and text[:4].isdigit() and text[5:].isdigit()):
        raise ValidationFailed(MSG_INVALID, {'month': [MSG_MONTH]})
    try:
        return parse_period(text or 'month', today=today)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, {'month': [m for ms in exc.fields.values() for m in ms]}) from None


# -- numbers as text -----------------------------------------------------------------------------------------

def percent(value: float | None) -> str:
    """``66.7%``; ``—`` for no value."""
    return DASH if value is None else f'{value * 100:.1f}%'


def hours(value: float | None) -> str:
    """A duration: ``13.3 小时`` below two days, ``3.5 天`` above; ``—`` for none."""
    if value is None:
        return DASH
    if value < 48:
        return gettext('%(num)s 小时', num=f'{value:.1f}')
    return gettext('%(num)s 天', num=f'{value / 24:.1f}')


def number(value: float | None, places: int = 0) -> str:
    """A plain number; ``—`` for none."""
    return DASH if value is None else f'{value:.{places}f}'


def measure_text(spec_key: str, value: float | None) -> str:
    """A ranking measure's raw value as its page shows it."""
    if spec_key == 'zero_out_of_contact':
        return DASH if value is None else (gettext('是') if value >= 1 else gettext('否'))
    if spec_key.endswith('_rate'):
        return percent(value)
    if spec_key.endswith('_hours'):
        return hours(value)
    return number(value)


def heat_level(value: float | None) -> int | None:
    """The heatmap class step (0–6) of a duration in hours; None for no value."""
    if value is None:
        return None
    return sum(1 for step in HEAT_STEPS if value >= step)


def heat_legend() -> list[tuple[int, str]]:
    """The heatmap's legend: each colour step and the durations it covers."""
    bounds = [hours(float(step)) for step in HEAT_STEPS]
    labels = [gettext('不足 %(limit)s', limit=bounds[0])]
    labels += [f'{low} – {high}' for low, high in zip(bounds, bounds[1:], strict=False)]
    labels.append(gettext('%(limit)s 以上', limit=bounds[-1]))
    return list(enumerate(labels))


# -- charts (Chart.js configurations, read by static/dist/charts.js from data-chart) --------------------------

def _dataset(label: str, values: Sequence[float | None], colour: str) -> dict[str, Any]:
    return {'label': label, 'data': list(values), 'backgroundColor': colour, 'borderColor': colour}


def _bar(labels: Sequence[str], datasets: list[dict[str, Any]], *, unit: str = '', horizontal: bool = False,
         suggested_max: float | None = None) -> dict[str, Any]:
    scale: dict[str, Any] = {'beginAtZero': True}
    if suggested_max is not None:
        scale['suggestedMax'] = suggested_max
    return {'type': 'bar', 'data': {'labels': list(labels), 'datasets': datasets},
            'options': {'indexAxis': 'y' if horizontal else 'x', 'scales': {'y' if not horizontal else 'x': scale}},
            'unit': unit}


def cases_chart(children: Sequence[UnitStats]) -> dict[str, Any]:
    """Cases opened and closed per child unit."""
    names = [c.unit.name for c in children]
    return _bar(names, [_dataset(gettext('新收案件'), [c.tally.cases_opened for c in children], COLOURS[0]),
                        _dataset(gettext('办结案件'), [c.tally.cases_closed for c in children], COLOURS[1])])


def rates_chart(children: Sequence[UnitStats]) -> dict[str, Any]:
    """On-time, mediation-success and overdue rates per child unit, in percent (gaps where there is no rate)."""
    def pct(values: Iterable[float | None]) -> list[float | None]:
        return [None if v is None else round(v * 100, 1) for v in values]

    names = [c.unit.name for c in children]
    return _bar(names, [_dataset(gettext('按期办结率'), pct(c.on_time_rate for c in children), COLOURS[0]),
                        _dataset(gettext('调解成功率'), pct(c.mediation_success_rate for c in children), COLOURS[1]),
                        _dataset(gettext('逾期率'), pct(c.overdue_rate for c in children), COLOURS[3])],
                unit='%', suggested_max=100)


def steps_chart(rows: Sequence[StepRow], names: dict[str, str]) -> dict[str, Any]:
    """The slowest steps: mean and 90th percentile hours."""
    slowest = sorted(rows, key=lambda r: -r.avg_hours)[:CHART_STEPS]
    labels = [f'{names.get(r.process_key, r.process_key)} · {r.title}' for r in slowest]
    return _bar(labels, [_dataset(gettext('平均时长'), [round(r.avg_hours, 1) for r in slowest], COLOURS[0]),
                         _dataset(gettext('九成在此时长内'), [None if r.p90_hours is None else round(r.p90_hours, 1)
                                                          for r in slowest], COLOURS[2])],
                unit=gettext('小时'), horizontal=True)


# -- exports -------------------------------------------------------------------------------------------------

def export_header() -> list[str]:
    """The columns of the CSV and XLSX exports."""
    head = [gettext('名次'), gettext('单位代码'), gettext('单位'), gettext('得分'), gettext('并列')]
    for spec in MEASURES:
        label = gettext(spec.label)
        head += [gettext('%(measure)s：原始值', measure=label), gettext('%(measure)s：标准化值', measure=label),
                 gettext('%(measure)s：权重', measure=label), gettext('%(measure)s：得分', measure=label)]
    return head


def _line_cells(line: MeasureScore) -> list[Any]:
    def dec(value: Any) -> float | None:
        return None if value is None else float(value)

    raw = None if line.raw is None else round(line.raw, 4)
    return [raw, dec(line.normalised), dec(line.share), dec(line.contribution)]


def export_rows(scores: Sequence[CountyScore]) -> list[list[Any]]:
    """One row per county, in rank order: numbers as numbers, no value as empty."""
    rows = []
    for score in scores:
        row: list[Any] = [score.rank, score.code, score.name, None if score.score is None else float(score.score),
                          gettext('是') if score.tied else '']
        for line in score.measures:
            row += _line_cells(line)
        rows.append(row)
    return rows


def _safe(value: Any) -> Any:
    # A cell a spreadsheet would run as a formula (CSV injection) is kept as text.
    if isinstance(value, str) and value[:1] in ('=', '+', '-', '@', '\t', '\r'):
        return "'" + value
    return value


def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 CSV with a byte-order mark, so that Excel reads the Chinese headers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(['' if v is None else _safe(v) for v in row])
    return ('\ufeff' + buffer.getvalue()).encode('utf-8')


def xlsx_bytes(title: str, header: list[str], rows: list[list[Any]], notes: list[str]) -> bytes:
    """An XLSX workbook: the ranking sheet, and the weights and formula on a second sheet."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = gettext('工作评比')
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_safe(v) for v in row])
    sheet.freeze_panes = 'D2'
    about = book.create_sheet(gettext('说明'))
    about.append([title])
    for note in notes:
        about.append([_safe(note)])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
