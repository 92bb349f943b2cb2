"""The global audit log as supervisors read it: filtered, scoped, keyset-paged, exported as CSV or XLSX.

Who sees which events:

* a **supervisor** sees the events recorded at a unit they supervise or below (``AuditEvent.org_path``, the
  unit at the time), and the events of cases now below those units that were recorded without a unit;
* an **audit administrator** (安全审计员, ``audit_admin``) sees the same for the units where the role is
  held: every event there, the accounts, roles and second factors the other two 三员 changed among them;
* events with neither a unit nor a case (deployments, the working calendar, exports of this log) concern the
  whole installation: **audit administrators** (whatever their unit) and **province-level supervisors** (a
  root unit of the tree) see them.

A minor's case (社区矫正法 §54) shows only from its county down: readers above see none of its events.

三员: the system administrator (``system_admin``, the legacy ``admin``) and the security administrator do not
read this log; what they do is in it, for the audit administrator. The audit administrator sees no case
pages, no to-do list and no case search: the role grants no case visibility (``NON_CASE_ROLES``).

Every export is itself an audit event (``audit.exported``) recorded at the exporter's widest readable unit.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from sqlalchemy.orm import Session

from engine import audit
from engine.access import AUDIT_ADMIN, Scope, path_filter, sees_minors_from
from engine.clock import LOCAL_ZONE
from engine.db import starts_with
from engine.errors import AccessDenied, ValidationFailed
from engine.i18n import N_, _
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.users import User
from engine.search import day_range

__all__ = ['EXPORT_MAX', 'AuditFilter', 'AuditPage', 'ExportRow', 'audit_clause', 'count_events', 'export_csv',
           'export_rows', 'export_xlsx', 'headers', 'list_events', 'may_read_audit', 'prepare_export',
           'reader_org_path', 'reader_paths', 'require_reader', 'sees_system_events']

#: an export holds at most this many rows; a wider one is refused with a request to narrow the filters
EXPORT_MAX = 100_000
#: counts stop here ("1000+")
COUNT_CAP = 1000
PAGE_MAX = 200
_BATCH = 1000
_KIND = re.compile(r'^[a-z_]+(\.[a-z_]+)*(\.\*)?$')
_TEXT_KEYS = ('actor', 'kind', 'org_unit', 'case')
_DATE_KEYS = ('date_from', 'date_to')
MSG_INVALID = N_('筛选条件有误')
MSG_DATE = N_('请按“年-月-日”填写日期。')
MSG_RANGE = N_('结束日期不能早于开始日期。')
MSG_KIND = N_('事件类型无效。')
MSG_TOO_LONG = N_('输入过长。')
MSG_UNIT = N_('该机构不在您的辖区内。')
MSG_NO_ACCESS = N_('只有主管领导和安全审计员可以查看审计日志。')
MSG_TOO_MANY = N_('符合条件的记录超过 {max} 条，请缩小筛选范围后再导出。')
#: the export's columns, in order
EXPORT_HEADERS = (N_('序号'), N_('时间'), N_('操作人'), N_('事件'), N_('事件类型'), N_('案件编号'), N_('机构'),
                  N_('变更前'), N_('变更后'), N_('备注'), N_('哈希值'))


# -- who sees what ----------------------------------------------------------------------------------------------

def reader_paths(scope: Scope) -> tuple[str, ...]:
    """The subtrees whose events ``scope`` reads: the units it supervises or audits."""
    return tuple(sorted({*scope.supervisor_paths, *scope.paths_of(frozenset({AUDIT_ADMIN}))}))


def reader_org_path(scope: Scope) -> str | None:
    """Where the reader's own acts on the log (exports, chain checks) are recorded: their widest unit."""
    paths = reader_paths(scope)
    return min(paths, key=len) if paths else None


def sees_system_events(scope: Scope) -> bool:
    """Whether ``scope`` sees events of the whole installation: audit administrators, supervisors of a root unit."""
    return scope.is_audit_admin or any(path.count('/') <= 2 for path in scope.supervisor_paths)


def may_read_audit(scope: Scope) -> bool:
    """Whether ``scope`` may open the audit log at all."""
    return bool(reader_paths(scope))


def require_reader(scope: Scope) -> None:
    """Raise AccessDenied unless ``scope`` may read the audit log."""
    if not may_read_audit(scope):
        raise AccessDenied(MSG_NO_ACCESS)


def audit_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """The audit events ``scope`` may read (see the module docstring)."""
    paths = reader_paths(scope)
    terms: list[sa.ColumnElement[bool]] = []
    if paths:
        cases_below = sa.select(Case.id).where(path_filter(Case.org_path, paths))
        terms += [sa.or_(*(starts_with(AuditEvent.org_path, path) for path in paths)),
                  sa.and_(AuditEvent.org_path.is_(None), AuditEvent.case_id.in_(cases_below))]
    if sees_system_events(scope):
        terms.append(sa.and_(AuditEvent.org_path.is_(None), AuditEvent.case_id.is_(None)))
    if not terms:
        return sa.false()
    if all(sees_minors_from(path) for path in paths):
        return sa.or_(*terms)
    # §54: a minor's case shows only from its county down, so readers above see none of its events
    deep = tuple(path for path in paths if sees_minors_from(path))
    hidden = sa.select(Case.id).where(Case.is_minor, sa.not_(path_filter(Case.org_path, deep)))
    return sa.and_(sa.or_(*terms), sa.or_(AuditEvent.case_id.is_(None), AuditEvent.case_id.not_in(hidden)))


# -- filters --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditFilter:
    """The audit log's filters; every field narrows, None leaves it open.

    :param actor: the actor's name or its beginning (``系统`` for the system)
    :param kind: an event kind (``task.completed``) or a family of them (``task.*``)
    :param org_unit: an org unit code within the caller's supervised subtrees: events there and below
    :param case: a case number, whole
    :param date_from: events on or after this local day
    :param date_to: events on or before this local day
    """

    actor: str | None = None
    kind: str | None = None
    org_unit: str | None = None
    case: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AuditFilter:
        """Read and check filter values given as text; unknown keys are ignored.

        :raises ValidationFailed: naming every field that is wrong
        """
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for key in (*_TEXT_KEYS, *_DATE_KEYS):
            text = str(raw.get(key) or '').strip()
            if not text:
                continue
            if key in _DATE_KEYS:
                try:
                    values[key] = date.fromisoformat(text)
                except ValueError:
                    errors[key] = [MSG_DATE]
            elif len(text) > 64:
                errors[key] = [MSG_TOO_LONG]
            elif key == 'kind' and not _KIND.match(text):
                errors[key] = [MSG_KIND]
            else:
                values[key] = text
        if 'date_from' in values and 'date_to' in values and values['date_from'] > values['date_to']:
            errors['date_to'] = [MSG_RANGE]
        if errors:
            raise ValidationFailed(MSG_INVALID, errors)
        return cls(**values)

    def to_dict(self) -> dict[str, str]:
        """The filter as text values (for links, export forms and the export's audit record)."""
        return {key: value.isoformat() if isinstance(value, date) else str(value)
                for key in (*_TEXT_KEYS, *_DATE_KEYS) if (value := getattr(self, key)) is not None}


def _unit_clause(session: Session, scope: Scope, code: str) -> sa.ColumnElement[bool]:
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    if unit is None or not any(unit.path.startswith(path) for path in reader_paths(scope)):
        raise ValidationFailed(MSG_INVALID, {'org_unit': [MSG_UNIT]})
    cases_below = sa.select(Case.id).where(starts_with(Case.org_path, unit.path))
    return sa.or_(starts_with(AuditEvent.org_path, unit.path),
                  sa.and_(AuditEvent.org_path.is_(None), AuditEvent.case_id.in_(cases_below)))


def filter_clauses(session: Session, scope: Scope, wanted: AuditFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``wanted`` (the scope clause comes on top).

    :raises ValidationFailed: the org unit lies outside the caller's subtrees
    """
    clauses: list[sa.ColumnElement[bool]] = []
    if wanted.actor:
        clauses.append(AuditEvent.actor_name.startswith(wanted.actor, autoescape=True))
    if wanted.kind:
        clauses.append(AuditEvent.kind.startswith(wanted.kind[:-1], autoescape=True) if wanted.kind.endswith('.*')
                       else AuditEvent.kind == wanted.kind)
    if wanted.org_unit:
        clauses.append(_unit_clause(session, scope, wanted.org_unit))
    if wanted.case:
        clauses.append(AuditEvent.case_id.in_(sa.select(Case.id).where(Case.number == wanted.case.upper())))
    clauses += day_range(AuditEvent.occurred_dt, wanted.date_from, wanted.date_to)
    return clauses


def _where(session: Session, scope: Scope, wanted: AuditFilter) -> sa.ColumnElement[bool]:
    require_reader(scope)
    return sa.and_(audit_clause(scope), *filter_clauses(session, scope, wanted))


# -- the page -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first; ``case_numbers`` by case id; the cursor of the next page."""

    events: list[AuditEvent]
    case_numbers: dict[int, str]
    next_cursor: int | None


def list_events(session: Session, scope: Scope, wanted: AuditFilter, *, before: int | None = None,
                limit: int = 50) -> AuditPage:
    """The events ``scope`` may read matching ``wanted``, newest first, keyset-paged on the id.

    :param before: the ``next_cursor`` of the previous page
    :param limit: page size (1–200)
    :raises AccessDenied: the caller may not read the audit log
    :raises ValidationFailed: a bad page size, or an org unit outside the caller's subtrees
    """
    if not 1 <= limit <= PAGE_MAX:
        raise ValidationFailed(N_('分页参数无效'), {'limit': [N_('每页条数应在 1 到 200 之间。')]})
    query = sa.select(AuditEvent).where(_where(session, scope, wanted)).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = list(session.scalars(query))
    events = rows[:limit]
    return AuditPage(events, _case_numbers(session, {e.case_id for e in events if e.case_id}),
                     events[-1].id if len(rows) > limit else None)


def count_events(session: Session, scope: Scope, wanted: AuditFilter, *, cap: int = COUNT_CAP,
                 up_to: int | None = None) -> int:
    """How many events match, counting no further than ``cap`` + 1.

    :param up_to: only events with this id or lower
    """
    query = sa.select(AuditEvent.id).where(_where(session, scope, wanted))
    if up_to is not None:
        query = query.where(AuditEvent.id <= up_to)
    return session.scalar(sa.select(sa.func.count()).select_from(query.limit(cap + 1).subquery())) or 0


def _case_numbers(session: Session, case_ids: set[int]) -> dict[int, str]:
    if not case_ids:
        return {}
    return dict(session.execute(sa.select(Case.id, Case.number).where(Case.id.in_(case_ids))).tuples().all())


# -- exports --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportRow:
    """One event as an export writes it: every value already text."""

    values: tuple[str, ...]


def prepare_export(session: Session, scope: Scope, wanted: AuditFilter, *, actor: User, fmt: str) -> int:
    """Check an export may run and audit it; return the newest event id it covers.

    The export covers the events up to now, so rows written while it streams (its own audit record among
    them) do not shift it.

    :param fmt: ``csv`` or ``xlsx``
    :raises ValidationFailed: more than :data:`EXPORT_MAX` events match
    """
    up_to = session.scalar(sa.select(sa.func.max(AuditEvent.id))) or 0
    rows = count_events(session, scope, wanted, cap=EXPORT_MAX, up_to=up_to)
    if rows > EXPORT_MAX:
        message = _(MSG_TOO_MANY).format(max=EXPORT_MAX)
        raise ValidationFailed(message, {'_export': [message]})
    audit.record(session, 'audit.exported', actor=actor, org_path=reader_org_path(scope),
                 after={'format': fmt, 'rows': rows, 'up_to_id': up_to, 'filters': wanted.to_dict()})
    return up_to


def _json_text(value: dict[str, Any] | None) -> str:
    return '' if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def export_rows(session: Session, scope: Scope, wanted: AuditFilter, *, up_to: int,
                label: Callable[[str], str] = lambda kind: kind,
                mask: Callable[[Any], Any] = lambda values: values) -> Iterator[ExportRow]:
    """The matching events with ids up to ``up_to``, oldest first, read a batch at a time.

    :param label: an event kind in words (the web layer's labels); the kind itself by default
    :param mask: hides the sensitive values of an event's before/after (an export is a list: ID numbers,
        phones, addresses and medical details leave it masked, as on the page)
    """
    where, after = _where(session, scope, wanted), 0
    units: dict[str, str] = {}
    while True:
        batch = session.execute(
            sa.select(AuditEvent, Case.number).outerjoin(Case, Case.id == AuditEvent.case_id)
            .where(where, AuditEvent.id > after, AuditEvent.id <= up_to).order_by(AuditEvent.id).limit(_BATCH)).all()
        if not batch:
            return
        _load_unit_names(session, units, {event.org_path for event, _number in batch if event.org_path})
        for event, number in batch:
            yield ExportRow((str(event.id), event.occurred_dt.astimezone(LOCAL_ZONE).strftime('%Y-%m-%d %H:%M:%S'),
                             event.actor_name, label(event.kind), event.kind, number or '',
                             units.get(event.org_path or '', ''), _json_text(mask(event.before)),
                             _json_text(mask(event.after)), event.note or '', event.hash))
        after = batch[-1][0].id
        for event, _number in batch:
            session.expunge(event)  # an export of 100,000 rows must not keep them all in the identity map


def _load_unit_names(session: Session, known: dict[str, str], paths: set[str]) -> None:
    """Add the names of the units at ``paths`` to ``known``."""
    missing = paths - known.keys()
    if missing:
        known.update(session.execute(sa.select(OrgUnit.path, OrgUnit.name).where(OrgUnit.path.in_(missing)))
                     .tuples().all())


def headers() -> list[str]:
    """The export's column headers in the reader's language."""
    return [_(header) for header in EXPORT_HEADERS]


#: a cell starting with one of these is a formula to a spreadsheet program
_FORMULA_START = ('=', '+', '-', '@', '\t', '\r')


def _inert(value: str) -> str:
    """``value`` as a spreadsheet shows it but never runs it: a leading ``'`` before a formula character.

    Notes and names are typed by users; ``=HYPERLINK(...)`` in a note must not become a live link in the
    supervisor's Excel (CSV injection).
    """
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def export_csv(rows: Iterator[ExportRow]) -> Iterator[str]:
    """The rows as CSV text, a chunk per row after the header; starts with a BOM so that Excel reads UTF-8.

    Text that a spreadsheet would run as a formula is made inert (:func:`_inert`).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\r\n')
    writer.writerow(headers())
    yield '\ufeff' + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_inert(value) for value in row.values])
        yield buffer.getvalue()


def export_xlsx(rows: Iterator[ExportRow], *, title: str) -> IO[bytes]:
    """The rows as an XLSX workbook (one sheet, bold header, frozen first row) in a temporary file.

    Written in openpyxl's write-only mode, so memory stays flat however many rows; the file is spooled to
    disk once it grows past a few megabytes.

    :param title: the sheet's name (at most 31 characters)
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.freeze_panes = 'A2'
    bold = Font(bold=True)
    header = []
    for text in headers():
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([_cell(sheet, index, value) for index, value in enumerate(row.values)])
    output: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned
    workbook.save(output)
    output.seek(0)
    return output


def _cell(sheet: Any, index: int, value: str) -> Any:
    """The id column as a number, the time as a date-time; everything else as text, never as a formula.

    openpyxl reads a string starting with ``=`` as a formula: such cells are typed as strings explicitly.
    Characters XML cannot hold (control characters in a pasted note) are dropped.
    """
    if index == 0:
        return int(value)
    if index == 1:
        return datetime.strptime(value, '%Y-%m-%d %H:%M:%S')
    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub('', value))
    cell.data_type = 's'
    return cell
