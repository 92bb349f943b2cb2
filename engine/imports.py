"""Bulk import of existing caseloads (offenders under correction, open disputes) from CSV or XLSX.

An import kind (registered by a domain package, :func:`register_import_kind`) names its process, its columns
and the stages a row may say the case is at. Importing a file takes two steps:

1. **The dry run** (:func:`check_file`) reads every row and lists all of its problems: the file's headers,
   each cell (a formula is refused: it would run when the list is opened in a spreadsheet again), the start
   form of the process and its cross-field rules, the stage and its rules, the unit (inside the importer's
   subtree, where their roles see the kind), and duplicates (an ID number with an open case of the kind, or
   repeated in the file). Nothing is written.
2. **The import** (:func:`start_import`) runs the same checks, refuses a file with any problem, and stores
   the rows as an :class:`~engine.models.imports.ImportBatch`. The worker's ``import`` job works it off a few
   rows per run, each in a savepoint of its own: the row is checked again, its case is started through
   :func:`engine.runtime.start_case` and then driven to the stage the row names by completing the earlier
   human tasks as the system with the row's data (every such task's data carries ``imported: True``, its
   audit row the note ``批量导入``). A row that fails leaves nothing behind and does not stop the others; a
   run repeated after a crash never imports a settled row twice.

Deadlines: the reached step's due date is computed the way it always is, from the data the row supplied
(its legal dates: the judgment's effective date, the day the dispute was accepted...), never from the day
of the import; a deadline that already ran out shows as overdue, and a timer already due fires at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine import audit, clocks, reminders, runtime
from engine.access import Scope, load_scope, path_filter
from engine.clock import now
from engine.definitions import latest_definition, process_bundle
from engine.errors import EngineError, NotFound, ValidationFailed
from engine.forms import validate_form
from engine.i18n import N_, _
from engine.jobs import enqueue_batch_run, register_handler
from engine.models.cases import Case
from engine.models.imports import ImportBatch, ImportRow
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.profiles import profile_for

__all__ = ['JOB_KIND', 'Column', 'DryRun', 'ImportKind', 'ImportLimits', 'RowCheck', 'Stage', 'Table',
           'batch_rows', 'check_file', 'get_batch', 'import_kind', 'import_kinds', 'limits', 'list_batches',
           'read_table', 'register_import_kind', 'run_import_job', 'stage_labels', 'start_import', 'template_csv',
           'template_xlsx']

log = logging.getLogger(__name__)

#: the job kind the worker runs batches with
JOB_KIND = 'import'
#: the column every kind has: the unit the case belongs to
UNIT_COLUMN = 'unit_code'
#: the column every kind has: the stage the case is at
STAGE_COLUMN = 'stage'
#: the note on every step the import completes
IMPORTED_NOTE = N_('批量导入')
#: a cell starting with one of these is a spreadsheet formula (or would be taken for one when exported again)
FORMULA_PREFIXES = ('=', '+', '-', '@', '\t', '\r')

MSG_EMPTY = N_('文件中没有数据行。')
MSG_TOO_BIG = N_('文件过大：最大 {size} MB。')
MSG_TOO_MANY_ROWS = N_('数据行过多：一次最多导入 {rows} 行。')
MSG_ENCODING = N_('无法识别文件编码：请将 CSV 保存为 UTF-8 或 GB18030（GBK）编码。')
MSG_BAD_XLSX = N_('无法读取该 XLSX 文件，请用模板重新填写。')
MSG_BAD_CSV = N_('无法读取该 CSV 文件：{error}')
MSG_MISSING_COLUMNS = N_('缺少必需的列：{columns}。请使用下载的模板。')
MSG_UNKNOWN_COLUMNS = N_('无法识别的列：{columns}。请使用下载的模板。')
MSG_DUPLICATE_COLUMNS = N_('列名重复：{columns}。')
MSG_FILE_TYPE = N_('只能导入 CSV 或 XLSX 文件。')
MSG_HAS_PROBLEMS = N_('文件中有 {count} 行存在问题，请修改后重新检查，全部通过后才能导入。')
MSG_UNKNOWN_KIND = N_('不支持的导入类型。')
MSG_REQUIRED = N_('{column}：此项为必填项。')
MSG_FORMULA = N_('{column}：单元格内容不能以 = + - @ 开头（可能是公式）。')
MSG_CELL_TOO_LONG = N_('{column}：内容过长（最多 {length} 个字）。')
MSG_STAGE = N_('{column}：只能是 {stages}。')
MSG_UNIT = N_('{column}：机构代码“{code}”不存在，或不在您的管辖范围内。')
MSG_UNIT_KIND = N_('{column}：您在该机构的角色不办理此类案件。')
MSG_UNIT_LEVEL = N_('{column}：此类案件不能在该级机构立案。')
MSG_STAGE_UNIT = N_('{column}：处于“{stage}”阶段的案件不能属于该级机构。')
MSG_DUPLICATE_OPEN = N_('{column}：该公民身份号码已有在办的同类案件。')
MSG_DUPLICATE_OPEN_NUMBER = N_('{column}：该公民身份号码已有在办的同类案件 {number}。')
MSG_DUPLICATE_ROW = N_('{column}：与第 {line} 行重复。')
MSG_STAGE_STUCK = N_('无法推进到“{stage}”：步骤“{title}”不能由导入办理。')
MSG_STAGE_LOST = N_('无法推进到“{stage}”：流程已离开该阶段（{state}）。')
MSG_INTERNAL = N_('导入时发生内部错误（{error}）。')
MSG_IMPORTED = N_('已导入，案件 {number}，当前步骤：{step}。')
MSG_BATCH_NOT_FOUND = N_('导入批次不存在')
MAX_CELL = 4000


@dataclass(frozen=True)
class ImportLimits:
    """How much one file and one worker run take on."""

    #: bytes in an uploaded file
    max_bytes: int = 2 * 1024 * 1024
    #: data rows in one file
    max_rows: int = 2000
    #: rows one run of the ``import`` job imports before it hands over to its next run
    chunk_size: int = 10
    #: human tasks the driver completes at most to reach a stage (a guard against a loop in a diagram)
    max_steps: int = 20


limits = ImportLimits()


# -- what a domain package registers -------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """One column of an import file.

    :param key: the row key the mapper reads (``id_number``)
    :param header: the column's header in the template, in Chinese (``公民身份号码``)
    :param required: whether every row must fill it
    :param example: the template's example value
    """

    key: str
    header: str
    required: bool = False
    example: str = ''


#: a row's values (by column key) → {column key or form field: [messages]}
RowRule = Callable[[Mapping[str, str]], dict[str, list[str]]]
#: (bpmn id of a READY human task, the row's values, the case) → the data to complete it with, or None
StepFiller = Callable[[str, Mapping[str, str], Case], dict[str, Any] | None]


@dataclass(frozen=True)
class Stage:
    """A stage a row may say its case is at.

    :param code: a stable name (``supervision``)
    :param label: what the file's stage column says (``矫正执行``)
    :param targets: the bpmn ids of the steps the case may then wait at: user tasks, or an event the
        lifecycle waits on (the case is there once one of them is open or waiting)
    :param check: the stage's own rules on a row (the fields it needs filled)
    :param fill: the data to complete each earlier step with; None for a step the import must not complete
    :param unit_levels: the levels of unit a case at this stage may belong to (empty: any)
    """

    code: str
    label: str
    targets: tuple[str, ...]
    check: RowRule = field(default=lambda values: {})
    fill: StepFiller = field(default=lambda bpmn_id, values, case: None)
    unit_levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportKind:
    """What one kind of import file holds and how its rows become cases.

    :param name: ``offenders``, ``disputes``
    :param label: its name on the page
    :param process_key: the lifecycle its rows start
    :param columns: the columns (besides ``unit_code`` and ``stage``, which every kind has)
    :param stages: the importable stages
    :param start_data: a row's values → the start form's input
    :param unit_levels: the levels of unit a case of this kind may be opened at (empty: any)
    """

    name: str
    label: str
    process_key: str
    columns: tuple[Column, ...]
    stages: tuple[Stage, ...]
    start_data: Callable[[Mapping[str, str]], dict[str, Any]]
    unit_levels: tuple[str, ...] = ()

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """The kind's columns, then the unit and the stage."""
        stage_example = self.stages[-1].label if self.stages else ''
        return (*self.columns, Column(UNIT_COLUMN, '机构代码', True, ''),
                Column(STAGE_COLUMN, '当前阶段', True, stage_example))

    def header_of(self, key: str) -> str:
        """The header of column ``key`` (the key itself for a form field that is no column)."""
        return next((column.header for column in self.all_columns if column.key == key), key)

    def stage(self, text: str) -> Stage | None:
        """The stage a stage cell names, by its label or its code."""
        value = text.strip()
        return next((stage for stage in self.stages if value in (stage.label, stage.code)), None)


_kinds: dict[str, ImportKind] = {}


def register_import_kind(kind: ImportKind) -> None:
    """Make ``kind`` importable (the domain packages call this; calling again replaces it)."""
    _kinds[kind.name] = kind


def import_kinds() -> tuple[ImportKind, ...]:
    """Every registered kind, in registration order."""
    return tuple(_kinds.values())


def import_kind(name: str) -> ImportKind:
    """The kind called ``name``; ValidationFailed for any other."""
    try:
        return _kinds[name]
    except KeyError:
        raise ValidationFailed(MSG_UNKNOWN_KIND, {'kind': [MSG_UNKNOWN_KIND]}) from None


# -- reading files -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    """A file's header row and data rows (line number, cell texts), blank rows left out."""

    headers: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]


def _file_error(message: str, **values: Any) -> ValidationFailed:
    text = _(message).format(**values)
    return ValidationFailed(text, {'file': [text]})


def _cell_text(value: Any) -> str:
    """A cell as text: dates as ``YYYY-MM-DD``, whole numbers without ``.0``."""
    if value is None:
        return ''
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=' ')
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (float, Decimal)):
        return format(Decimal(str(value)).normalize(), 'f')
    return str(value)


def _decode(content: bytes) -> str:
    """UTF-8 (with or without its BOM), else GB18030; refused when neither reads it cleanly."""
    for encoding in ('utf-8-sig', 'gb18030'):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if '\x00' not in text:
            return text
    raise _file_error(MSG_ENCODING)


def _read_csv(content: bytes) -> list[list[str]]:
    text = _decode(content)
    try:
        reader = csv.reader(io.StringIO(text, newline=''))
        return [row for _, row in zip(range(limits.max_rows + 2), reader, strict=False)]
    except csv.Error as error:
        raise _file_error(MSG_BAD_CSV, error=str(error)) from None


def _read_xlsx(content: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        # Read-only streams the sheet; data_only=False keeps a formula as its text, so it is refused, not run.
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
        try:
            sheet = book.worksheets[0]
            rows = [[_cell_text(value) for value in row]
                    for _, row in zip(range(limits.max_rows + 2), sheet.iter_rows(values_only=True), strict=False)]
        finally:
            book.close()
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, IndexError, TypeError):
        raise _file_error(MSG_BAD_XLSX) from None
    except Exception as exc:  # openpyxl's own errors on a damaged file have no common base class
        log.info('unreadable xlsx: %s', exc)
        raise _file_error(MSG_BAD_XLSX) from None
    return rows


def read_table(content: bytes, filename: str) -> Table:
    """Read the first sheet of an XLSX file or a CSV file into a :class:`Table`.

    :param filename: the uploaded name; ``.xlsx`` (or a file that is a zip archive) is read as XLSX
    :raises ValidationFailed: the file is too big, empty, unreadable or in an unknown encoding
    """
    if len(content) > limits.max_bytes:
        raise _file_error(MSG_TOO_BIG, size=limits.max_bytes // (1024 * 1024))
    name = filename.lower()
    if name.endswith('.xlsx') or content.startswith(b'PK\x03\x04'):
        raw = _read_xlsx(content)
    elif name.endswith(('.csv', '.txt')) or not name:
        raw = _read_csv(content)
    else:
        raise _file_error(MSG_FILE_TYPE)
    cleaned = [(line, tuple(cell.strip() if isinstance(cell, str) else _cell_text(cell) for cell in row))
               for line, row in enumerate(raw, start=1)]
    filled = [(line, row) for line, row in cleaned if any(row)]
    if not filled:
        raise _file_error(MSG_EMPTY)
    (_, headers), body = filled[0], filled[1:]
    if not body:
        raise _file_error(MSG_EMPTY)
    if len(body) > limits.max_rows:
        raise _file_error(MSG_TOO_MANY_ROWS, rows=limits.max_rows)
    return Table(tuple(h.lstrip('\ufeff').strip() for h in headers), tuple(body))


def _column_index(kind: ImportKind, headers: Sequence[str]) -> dict[str, int]:
    """Where each column is in the file (by header, or by key); ValidationFailed on missing or unknown ones."""
    by_name = {name: column for column in kind.all_columns for name in (column.header, column.key)}
    index: dict[str, int] = {}
    unknown, repeated = [], []
    for position, header in enumerate(headers):
        if not header:
            continue
        column = by_name.get(header)
        if column is None:
            unknown.append(header)
        elif column.key in index:
            repeated.append(header)
        else:
            index[column.key] = position
    missing = [column.header for column in kind.all_columns if column.required and column.key not in index]
    problems = []
    if missing:
        problems.append(_(MSG_MISSING_COLUMNS).format(columns='、'.join(missing)))
    if unknown:
        problems.append(_(MSG_UNKNOWN_COLUMNS).format(columns='、'.join(unknown[:10])))
    if repeated:
        problems.append(_(MSG_DUPLICATE_COLUMNS).format(columns='、'.join(repeated)))
    if problems:
        raise ValidationFailed(problems[0], {'file': problems})
    return index


def _row_values(kind: ImportKind, index: Mapping[str, int], cells: Sequence[str]) -> dict[str, str]:
    return {column.key: (cells[index[column.key]] if column.key in index and index[column.key] < len(cells)
                         else '') for column in kind.all_columns}


# -- templates -----------------------------------------------------------------------------------------

def template_csv(kind: ImportKind) -> bytes:
    """The kind's template as CSV: the headers and one example row, UTF-8 with a BOM (so Excel reads it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\r\n')
    writer.writerow([column.header for column in kind.all_columns])
    writer.writerow([column.example for column in kind.all_columns])
    return out.getvalue().encode('utf-8-sig')


def template_xlsx(kind: ImportKind) -> bytes:
    """The kind's template as XLSX: the headers, one example row, every cell formatted as text."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = kind.label[:31]
    for row in ([column.header for column in kind.all_columns], [column.example for column in kind.all_columns]):
        sheet.append(row)
    for cells in sheet.iter_rows():
        for cell in cells:
            cell.number_format = '@'  # text: a date or an ID number stays as typed
    for position, column in enumerate(kind.all_columns):
        sheet.column_dimensions[sheet.cell(1, position + 1).column_letter].width = max(12, 2 * len(column.header) + 4)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- the dry run ---------------------------------------------------------------------------------------

@dataclass
class RowCheck:
    """One data row and every problem found in it."""

    line: int
    values: dict[str, str]
    problems: list[str] = field(default_factory=list)
    stage: Stage | None = None
    unit: OrgUnit | None = None

    @property
    def ok(self) -> bool:
        """Whether the row may be imported."""
        return not self.problems


@dataclass
class DryRun:
    """The result of checking a file: each row with its problems; nothing was written."""

    kind: ImportKind
    filename: str
    digest: str
    rows: list[RowCheck]

    @property
    def problem_count(self) -> int:
        """Rows with at least one problem."""
        return sum(1 for row in self.rows if not row.ok)

    @property
    def ok(self) -> bool:
        """Whether every row may be imported."""
        return self.problem_count == 0


def _messages(kind: ImportKind, problems: Mapping[str, Any]) -> list[str]:
    """``{field: [messages]}`` as ``列名：message`` lines, in the reader's language."""
    lines = []
    for name, messages in problems.items():
        for message in messages if isinstance(messages, list) else [messages]:
            text = _(str(message))
            lines.append(text if name in ('_schema', '') else f'{kind.header_of(name)}：{text}')
    return lines


def _cell_problems(kind: ImportKind, values: Mapping[str, str]) -> list[str]:
    problems = []
    for column in kind.all_columns:
        value = values.get(column.key, '')
        if column.required and not value:
            problems.append(_(MSG_REQUIRED).format(column=column.header))
        elif value.startswith(FORMULA_PREFIXES):
            problems.append(_(MSG_FORMULA).format(column=column.header))
        elif len(value) > MAX_CELL:
            problems.append(_(MSG_CELL_TOO_LONG).format(column=column.header, length=MAX_CELL))
    return problems


def _sees_kind(scope: Scope, path: str, process_key: str) -> bool:
    """Whether the importer's roles at a unit covering ``path`` work on cases of ``process_key``."""
    return any(reach.covers(path) and process_key not in reach.hidden_kinds for reach in scope.reaches)


def _check_unit(session: Session, kind: ImportKind, row: RowCheck, scope: Scope | None) -> None:
    code = row.values.get(UNIT_COLUMN, '')
    if not code:
        return
    header = kind.header_of(UNIT_COLUMN)
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    # A unit outside the subtree reads the same as one that does not exist.
    if unit is None or (scope is not None and not scope.sees_path(unit.path)):
        row.problems.append(_(MSG_UNIT).format(column=header, code=code))
        return
    if scope is not None and not _sees_kind(scope, unit.path, kind.process_key):
        row.problems.append(_(MSG_UNIT_KIND).format(column=header))
        return
    row.unit = unit


def _check_start(kind: ImportKind, row: RowCheck, bundle: Any) -> dict[str, Any] | None:
    """Validate the row's start data through the start form and the profile's cross-field rules."""
    raw = kind.start_data(row.values)
    try:
        clean = validate_form(bundle.start_form, raw) if bundle.start_form else dict(raw)
    except ValidationFailed as exc:
        # The cross-field rules too, on what the form did not already refuse: every problem at once.
        texts = {spec.id for spec in bundle.start_form.fields if spec.type in ('string', 'enum', 'date')}
        extra = {name: messages for name, messages in profile_for(kind.process_key).validate(raw).items()
                 if name not in exc.fields and name in texts and row.values.get(name)}
        row.problems.extend(_messages(kind, {**exc.fields, **extra}) or [_(exc.message)])
        return None
    try:
        profile_for(kind.process_key).subject_columns(clean)
    except ValidationFailed as exc:
        row.problems.extend(_messages(kind, exc.fields) or [_(exc.message)])
        return None
    return clean


def _check_stage(kind: ImportKind, row: RowCheck) -> None:
    text = row.values.get(STAGE_COLUMN, '')
    if not text:
        return
    stage = kind.stage(text)
    if stage is None:
        row.problems.append(_(MSG_STAGE).format(column=kind.header_of(STAGE_COLUMN),
                                                stages='、'.join(s.label for s in kind.stages)))
        return
    row.stage = stage
    row.problems.extend(_messages(kind, stage.check(row.values)))


def _open_case(session: Session, kind: ImportKind, id_number: str) -> Case | None:
    return session.scalars(sa.select(Case).where(
        Case.kind == kind.process_key, Case.id_number == id_number.upper(), Case.status == 'open')
        .order_by(Case.id).limit(1)).first()


def _check_duplicate(session: Session, kind: ImportKind, row: RowCheck, seen: dict[str, int],
                     scope: Scope | None) -> None:
    number = row.values.get('id_number', '').upper()
    if not number:
        return
    header = kind.header_of('id_number')
    if number in seen:
        row.problems.append(_(MSG_DUPLICATE_ROW).format(column=header, line=seen[number]))
    else:
        seen[number] = row.line
    existing = _open_case(session, kind, number)
    if existing is not None:
        # The number of a case outside the importer's subtree is not theirs to learn.
        if scope is None or scope.owns_case(existing):
            row.problems.append(_(MSG_DUPLICATE_OPEN_NUMBER).format(column=header, number=existing.number))
        else:
            row.problems.append(_(MSG_DUPLICATE_OPEN).format(column=header))


def _check_row(session: Session, kind: ImportKind, row: RowCheck, bundle: Any, scope: Scope | None,
               seen: dict[str, int]) -> dict[str, Any] | None:
    """Every check of one row; returns its clean start data (None when it has problems)."""
    row.problems.extend(_cell_problems(kind, row.values))
    _check_unit(session, kind, row, scope)
    if row.unit is not None and kind.unit_levels and row.unit.level not in kind.unit_levels:
        row.problems.append(_(MSG_UNIT_LEVEL).format(column=kind.header_of(UNIT_COLUMN)))
    _check_stage(kind, row)
    if row.unit is not None and row.stage is not None and row.stage.unit_levels \
            and row.unit.level not in row.stage.unit_levels:
        row.problems.append(_(MSG_STAGE_UNIT).format(column=kind.header_of(UNIT_COLUMN), stage=_(row.stage.label)))
    clean = _check_start(kind, row, bundle)
    _check_duplicate(session, kind, row, seen, scope)
    return clean if row.ok else None


def check_file(session: Session, kind_name: str, content: bytes, filename: str, *,
               scope: Scope | None) -> DryRun:
    """The dry run: read the file and check every row; nothing is written.

    :param kind_name: the import kind (``offenders``, ``disputes``)
    :param scope: the importer's grants (None for the system: every unit)
    :raises ValidationFailed: for the file as a whole (its size, encoding, headers, no rows)
    """
    kind = import_kind(kind_name)
    table = read_table(content, filename)
    index = _column_index(kind, table.headers)
    bundle = process_bundle(session, latest_definition(session, kind.process_key))
    seen: dict[str, int] = {}
    rows = []
    with session.no_autoflush:
        for line, cells in table.rows:
            row = RowCheck(line, _row_values(kind, index, cells))
            _check_row(session, kind, row, bundle, scope, seen)
            rows.append(row)
    return DryRun(kind, filename, hashlib.sha256(content).hexdigest(), rows)


# -- starting a batch ----------------------------------------------------------------------------------

def start_import(session: Session, kind_name: str, content: bytes, filename: str, *, actor: User,
                 scope: Scope) -> ImportBatch:
    """Check the file again and, when every row passes, queue its rows for the worker's ``import`` job.

    :param actor: the importer: every case is opened in their name
    :param scope: their grants
    :raises ValidationFailed: the file, or any row, has a problem (nothing is written)
    """
    result = check_file(session, kind_name, content, filename, scope=scope)
    if not result.ok:
        message = _(MSG_HAS_PROBLEMS).format(count=result.problem_count)
        raise ValidationFailed(message, {'file': [message]})
    batch = ImportBatch(kind=result.kind.name, process_key=result.kind.process_key, filename=filename[:255] or '-',
                        file_digest=result.digest, created_by_id=actor.id, org_path=actor.org_unit.path,
                        created_dt=now(), status='queued', total_count=len(result.rows), imported_count=0,
                        failed_count=0)
    session.add(batch)
    session.flush()
    session.add_all(ImportRow(batch_id=batch.id, row_number=row.line, data=row.values, status='pending',
                              org_path=row.unit.path if row.unit else actor.org_unit.path)
                    for row in result.rows)
    enqueue_batch_run(session, JOB_KIND, batch.id, 1)
    audit.record(session, 'import.started', actor=actor, org_path=batch.org_path,
                 after={'batch_id': batch.id, 'kind': batch.kind, 'process_key': batch.process_key,
                        'filename': batch.filename, 'digest': batch.file_digest, 'rows': batch.total_count})
    session.flush()
    return batch


# -- driving a case to its stage -----------------------------------------------------------------------

def _lifecycle_rows(session: Session, case: Case) -> list[HumanTask]:
    """The open steps of the case's lifecycle (requests it started on the way, reports for one, not included)."""
    return list(session.scalars(sa.select(HumanTask).join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
                                .where(HumanTask.case_id == case.id, HumanTask.status == 'open',
                                       ProcessInstance.is_lifecycle.is_(True)).order_by(HumanTask.id)))


def _waits_at(session: Session, case: Case, bpmn_ids: tuple[str, ...]) -> bool:
    """Whether the case's lifecycle waits at one of the events (or tasks) ``bpmn_ids``."""
    instance = session.scalars(sa.select(ProcessInstance).where(
        ProcessInstance.case_id == case.id, ProcessInstance.is_lifecycle.is_(True))).first()
    if instance is None:
        return False
    workflow, _bundle = runtime.restore_workflow(session, instance)
    return any(task.task_spec.bpmn_id in bpmn_ids and task.state & (TaskState.WAITING | TaskState.READY)
               for task in runtime.all_tasks(workflow))


def _complete_as_system(session: Session, task: HumanTask, data: Mapping[str, Any]) -> None:
    """Complete ``task`` with ``data`` (checked by its form) as the system, marked as imported."""
    instance = runtime._lock_instance(session, task.instance_id)
    workflow, bundle = runtime.restore_workflow(session, instance)
    info = bundle.user_tasks.get(task.bpmn_id)
    clean = runtime._clean(info.form if info else None, data)
    spiff = workflow.get_task_from_id(UUID(task.spiff_task_id))
    if spiff is None or spiff.state != TaskState.READY:
        raise ValidationFailed(_(MSG_STAGE_LOST).format(stage=task.title, state=task.bpmn_id))
    spiff.data.update(clean)
    spiff.data['imported'] = True
    spiff.run()
    task.status, task.completed_dt = 'completed', now()
    reminders.cancel_task_jobs(session, task)
    audit.record(session, 'task.completed', actor=None, case_id=task.case_id, instance_id=instance.id,
                 task_id=task.id, org_path=task.org_path, after={**clean, 'imported': True}, note=IMPORTED_NOTE)
    if info is not None:
        clocks.on_task_completed(session, task, info.properties, spiff.data, None)
    runtime._settle(session, instance, workflow, bundle, None)


def _drive(session: Session, case: Case, stage: Stage, values: Mapping[str, str]) -> HumanTask | None:
    """Complete earlier steps until the case stands at ``stage``; returns the reached task (None at an event)."""
    for _step in range(limits.max_steps + 1):
        open_rows = _lifecycle_rows(session, case)
        reached = next((row for row in open_rows if row.bpmn_id in stage.targets), None)
        if reached is not None:
            return reached
        if not open_rows and _waits_at(session, case, stage.targets):
            return None
        if not open_rows or case.status != 'open':
            raise ValidationFailed(_(MSG_STAGE_LOST).format(stage=_(stage.label), state=case.status))
        task = open_rows[0]
        data = stage.fill(task.bpmn_id, values, case)
        if data is None:
            raise ValidationFailed(_(MSG_STAGE_STUCK).format(stage=_(stage.label), title=task.title))
        _complete_as_system(session, task, data)
    raise ValidationFailed(_(MSG_STAGE_STUCK).format(stage=_(stage.label), title='、'.join(stage.targets)))


# -- the worker's job ----------------------------------------------------------------------------------

def _import_row(session: Session, batch: ImportBatch, kind: ImportKind, row: ImportRow, actor: User,
                scope: Scope, seen: dict[str, int]) -> tuple[Case, str]:
    """Check one stored row again, start its case and drive it to its stage; returns the case and the step."""
    check = RowCheck(row.row_number, {key: str(value) for key, value in row.data.items()})
    bundle = process_bundle(session, latest_definition(session, kind.process_key))
    clean = _check_row(session, kind, check, bundle, scope, seen)
    if clean is None or check.unit is None or check.stage is None:
        raise ValidationFailed('；'.join(check.problems) or _(MSG_INTERNAL).format(error='-'))
    case, _tasks = runtime.start_case(session, kind.process_key, clean, actor=actor, org_unit=check.unit, scope=scope)
    reached = _drive(session, case, check.stage, check.values)
    step = reached.title if reached is not None else _(check.stage.label)
    audit.record(session, 'import.row_imported', actor=actor, case_id=case.id, org_path=case.org_path,
                 after={'batch_id': batch.id, 'row': row.row_number, 'stage': check.stage.code,
                        'task_id': reached.id if reached is not None else None,
                        'due_dt': reached.due_dt.isoformat() if reached is not None and reached.due_dt else None},
                 note=IMPORTED_NOTE)
    return case, step


def _settle_row(session: Session, batch: ImportBatch, kind: ImportKind, row: ImportRow, actor: User,
                scope: Scope) -> None:
    """Import one row in a savepoint: a failure rolls back only this row and is written on it."""
    try:
        with session.begin_nested():
            case, step = _import_row(session, batch, kind, row, actor, scope, {})
    except EngineError as exc:
        row.status, row.message = 'failed', _failure_text(exc)
    except SQLAlchemyError:
        raise  # the database itself: let the worker retry the whole run
    except Exception as exc:  # a SpiffWorkflow failure on one row must not stop the batch
        log.exception('importing row %s of batch %s failed', row.row_number, batch.id)
        row.status, row.message = 'failed', _(MSG_INTERNAL).format(error=type(exc).__name__)
    else:
        row.status, row.case_id = 'imported', case.id
        row.message = _(MSG_IMPORTED).format(number=case.number, step=step)
    row.finished_dt = now()


def _failure_text(exc: EngineError) -> str:
    fields = getattr(exc, 'fields', None) or {}
    details = [f'{name}：{_(str(m))}' for name, messages in fields.items() if name not in ('file', '_schema')
               for m in (messages if isinstance(messages, list) else [messages])]
    return '；'.join((_(exc.message), *details)) if details else _(exc.message)


def _count(session: Session, batch: ImportBatch) -> None:
    counts: dict[str, int] = {status: count for status, count in session.execute(
        sa.select(ImportRow.status, sa.func.count()).where(ImportRow.batch_id == batch.id)
        .group_by(ImportRow.status))}
    batch.imported_count = counts.get('imported', 0)
    batch.failed_count = counts.get('failed', 0)
    batch.total_count = sum(counts.values())


def _pending_rows(session: Session, batch: ImportBatch, count: int) -> list[ImportRow]:
    return list(session.scalars(sa.select(ImportRow).where(
        ImportRow.batch_id == batch.id, ImportRow.status == 'pending').order_by(ImportRow.id).limit(count)))


def run_import_job(session: Session, job: Job) -> None:
    """Import the next few rows of a batch, then schedule the next run (the ``import`` job handler).

    Each run takes ``limits.chunk_size`` pending rows, each in its own savepoint. Idempotent: a settled row
    is never tried again, and a run of a finished batch changes nothing. The rows are checked again under
    the importer's grants as they are now.
    """
    batch = session.get(ImportBatch, int(job.payload['batch_id']), with_for_update=True, populate_existing=True)
    if batch is None or batch.is_done:
        return
    batch.status = 'running'
    kind, actor = _kinds.get(batch.kind), batch.created_by
    scope = load_scope(session, actor)
    for row in _pending_rows(session, batch, limits.chunk_size):
        if kind is None:
            row.status, row.message, row.finished_dt = 'failed', _(MSG_UNKNOWN_KIND), now()
            continue
        _settle_row(session, batch, kind, row, actor, scope)
    session.flush()
    _count(session, batch)
    if batch.pending_count:
        enqueue_batch_run(session, JOB_KIND, batch.id, int(job.payload.get('run', 1)) + 1)
        return
    batch.status, batch.finished_dt = 'done', now()
    audit.record(session, 'import.finished', actor=None, org_path=batch.org_path,
                 after={'batch_id': batch.id, 'kind': batch.kind, 'imported': batch.imported_count,
                        'failed': batch.failed_count})


register_handler(JOB_KIND, run_import_job)


# -- reading batches -----------------------------------------------------------------------------------

def _visible_batch_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """Batches the caller started, or started at a unit they supervise."""
    return sa.or_(ImportBatch.created_by_id == scope.user_id,
                  path_filter(ImportBatch.org_path, scope.supervisor_paths))


def get_batch(session: Session, batch_id: int, scope: Scope) -> ImportBatch:
    """A batch the caller may see, or NotFound (also for one outside their reach)."""
    batch = session.scalars(sa.select(ImportBatch).where(ImportBatch.id == batch_id, _visible_batch_clause(scope))
                            .execution_options(populate_existing=True)).one_or_none()
    if batch is None:
        raise NotFound(MSG_BATCH_NOT_FOUND)
    return batch


def list_batches(session: Session, scope: Scope, *, limit: int = 50) -> list[ImportBatch]:
    """The newest batches the caller may see."""
    return list(session.scalars(sa.select(ImportBatch).where(_visible_batch_clause(scope))
                                .order_by(ImportBatch.id.desc()).limit(limit)))


def batch_rows(session: Session, batch: ImportBatch, scope: Scope) -> list[ImportRow]:
    """The batch's rows whose unit lies in the caller's subtrees, in file order."""
    return list(session.scalars(sa.select(ImportRow).where(
        ImportRow.batch_id == batch.id, path_filter(ImportRow.org_path, scope.case_paths))
        .order_by(ImportRow.row_number)))


def stage_labels(kind: ImportKind) -> list[str]:
    """The importable stages of ``kind``, as the stage column names them."""
    return [stage.label for stage in kind.stages]
