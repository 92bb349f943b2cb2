"""The case file (卷宗) page: a preview of the whole file, and its export as one printable HTML document.

The file holds every sensitive value in full (it is the record itself), so both are for those who may reveal
the case's sensitive data (:func:`web.cases.util.may_reveal`); anyone else who sees the case gets a 403, and
a case outside the caller's reach a 404 with the attempt logged. The preview and each export are audited.

The exported document stands alone: its stylesheets are written into it, so that it prints the same when
opened from a disk years later. It is served with a policy that runs no script and loads nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Response, current_app, render_template
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields

from engine.attachments import size_text
from engine.casefile import (
    MSG_MAY_NOT_EXPORT,
    CaseFile,
    TaskEntry,
    build_case_file,
    export_filename,
    record_export,
    record_preview,
)
from engine.errors import AccessDenied
from engine.forms import FieldSpec, registered_form
from engine.i18n import N_
from engine.models.cases import Case
from engine.models.users import User
from web.cases.controllers import CaseView
from web.cases.util import (
    CASE_STATUS_LABELS,
    EVENT_LABELS,
    KEY_LABELS,
    RISK_LABELS,
    DataRow,
    label_of,
    may_reveal,
    show_value,
)
from web.comments.util import attachment_settings, content_disposition
from web.core.auth import current_actor, current_scope
from web.core.database import db

#: the stylesheets written into an exported file, in order (the documents' own, then the file's)
STYLESHEETS = ('css/print.css', 'css/casefile.css')
#: the exported file runs nothing and fetches nothing; its styles and images are inside it
EXPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
#: the events of the file itself, named in its own history (the case page's table does not know them yet)
FILE_EVENT_LABELS = {**EVENT_LABELS, 'case.file_exported': N_('导出卷宗'), 'case.file_previewed': N_('预览卷宗')}
#: task-data keys the engine adds, not entered by anyone
ENGINE_KEYS = frozenset({'case_id', 'case_number'})
CHINESE_NUMERALS = '〇一二三四五六七八九'


# -- what the templates show ------------------------------------------------------------------------------

def chinese_ordinal(number: int) -> str:
    """一, 二 ... 十, 十一 ... 九十九: section numbers as a 卷宗 writes them."""
    if number < 10:
        return CHINESE_NUMERALS[number]
    tens, units = divmod(number, 10)
    return (CHINESE_NUMERALS[tens] if tens > 1 else '') + '十' + (CHINESE_NUMERALS[units] if units else '')


def form_labels(form_key: str | None) -> dict[str, str]:
    """Labels of a hand-made form's fields (``metadata['label']``), nested rows' fields included."""
    schema = registered_form(form_key)
    return _schema_labels(schema()) if schema is not None else {}


def _schema_labels(schema: Schema) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name, declared in schema.fields.items():
        key = declared.data_key or name
        if declared.metadata.get('label'):
            labels[key] = str(declared.metadata['label'])
        inner = declared.inner if isinstance(declared, fields.List) else declared
        if isinstance(inner, fields.Nested) and isinstance(inner.schema, Schema):
            labels.update({k: v for k, v in _schema_labels(inner.schema).items() if k not in labels})
    return labels


def data_rows(data: Mapping[str, Any], specs: Mapping[str, FieldSpec],
              labels: Mapping[str, str] | None = None) -> list[DataRow]:
    """Labelled rows of entered data, every value in full (rows of a list, such as the parties, numbered)."""
    labels = labels or {}
    rows: list[DataRow] = []
    for key, value in data.items():
        if key in ENGINE_KEYS:
            continue
        label = specs[key].label if key in specs else labels.get(key) or label_of(KEY_LABELS, key)
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            rows.extend(DataRow(f'{label}（{number}）', _row_text(item, labels))
                        for number, item in enumerate(value, 1))
        else:
            rows.append(DataRow(label, show_value(key, value, specs.get(key), reveal=True)))
    return rows


def _row_text(values: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    return '；'.join(f'{labels.get(key) or label_of(KEY_LABELS, key)}：{show_value(key, value, reveal=True)}'
                    for key, value in values.items())


@dataclass(frozen=True)
class HistoryRow:
    """One line of the file's 办理记录."""

    when: datetime
    actor: str
    what: str
    subject: str | None


def history_rows(case_file: CaseFile) -> list[HistoryRow]:
    """The case's audit events as the file lists them: when, who, what, about which task."""
    titles = {e.task.id: e.task.title for e in case_file.entries('task') if isinstance(e, TaskEntry)}
    titles.update({task.id: task.title for task in case_file.open_tasks})
    return [HistoryRow(event.occurred_dt, event.actor_name, label_of(FILE_EVENT_LABELS, event.kind),
                       titles.get(event.human_task_id or 0)) for event in case_file.history]


def _context(case_file: CaseFile) -> dict[str, Any]:
    case = case_file.case
    return {
        'file': case_file, 'case': case, 'kind_name': case_file.process_names.get(case.kind, case.kind),
        'history': history_rows(case_file), 'statuses': CASE_STATUS_LABELS, 'risks': RISK_LABELS,
        'ordinal': chinese_ordinal, 'data_rows': data_rows, 'form_labels': form_labels, 'size_text': size_text,
    }


# -- the exported document ------------------------------------------------------------------------------

def stylesheet_text() -> str:
    """The file's stylesheets, to be written into it."""
    folder = Path(current_app.static_folder or '')
    return '\n'.join((folder / name).read_text(encoding='utf-8') for name in STYLESHEETS)


def render_export(case_file: CaseFile) -> bytes:
    """The case file as one standalone, printable HTML document."""
    html = render_template('cases/casefile_document.html', styles=stylesheet_text(), **_context(case_file))
    return html.encode('utf-8')


def export_response(case: Case, content: bytes) -> Response:
    """``content`` as the download ``卷宗-<number>.html``, never cached, never run."""
    response = Response(content, mimetype='text/html')
    response.headers['Content-Disposition'] = content_disposition(export_filename(case))
    response.headers['Content-Security-Policy'] = EXPORT_POLICY
    response.headers['X-Content-Type-Options'] = 'nosniff'
    response.headers['Cache-Control'] = 'private, no-store'
    return response


def export_case_file(case: Case, actor: User, *, channel: str) -> Response:
    """Compile, render, audit (``case.file_exported``) and answer the case file as a download.

    :param channel: ``web`` or ``api``, as the audit event records it
    """
    case_file = build_case_file(db(), case, actor=actor, settings=attachment_settings())
    content = render_export(case_file)
    record_export(db(), case_file, content, channel=channel)
    return export_response(case, content)


def check_may_export(case: Case) -> None:
    """403 unless the caller may reveal the case's sensitive data (the file shows it in full)."""
    if not may_reveal(current_scope(), case):
        raise AccessDenied(MSG_MAY_NOT_EXPORT)


# -- the views ------------------------------------------------------------------------------------------

class CaseFileView(CaseView):
    """Base of the case-file views: the case's own units and those above them only."""

    def check_access(self) -> None:
        check_may_export(self.case)


class ShowCaseFileView(CaseFileView):
    """卷宗预览: the whole file on screen, with the button that exports it."""

    def get(self, case_id: int) -> ResponseReturnValue:
        case_file = build_case_file(db(), self.case, actor=current_actor(), settings=attachment_settings())
        record_preview(db(), case_file)
        response = Response(render_template('cases/casefile.html', **_context(case_file)))
        response.headers['Cache-Control'] = 'private, no-store'
        return response


class ExportCaseFileView(CaseFileView):
    """打印/导出: the file as one HTML document to save and print (to PDF) in the browser; audited."""

    def post(self, case_id: int) -> ResponseReturnValue:
        return export_case_file(self.case, current_actor(), channel='web')

