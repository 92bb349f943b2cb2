"""Labels and payloads shared by the import pages and the progress call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import url_for
from flask_babel import gettext

from engine.i18n import N_
from engine.imports import batch_rows
from engine.models.imports import ImportBatch
from web.core.auth import current_scope
from web.core.database import db

BATCH_STATUS_LABELS = {'queued': N_('排队中'), 'running': N_('导入中'), 'done': N_('已完成')}
ROW_STATUS_LABELS = {'pending': N_('待导入'), 'imported': N_('已导入'), 'failed': N_('失败')}
ROW_BADGES = {'imported': 'badge-done', 'failed': 'badge-danger'}


def label(labels: Mapping[str, str], value: str) -> str:
    """The label of ``value`` in the reader's language."""
    return gettext(labels[value]) if value in labels else value


def row_payload(batch: ImportBatch) -> list[dict[str, Any]]:
    """The batch's rows the caller may see, for the page and the progress call."""
    return [{'id': row.id, 'row_number': row.row_number, 'name': str(row.data.get('person_name') or ''),
             'status': row.status, 'status_label': label(ROW_STATUS_LABELS, row.status),
             'badge': ROW_BADGES.get(row.status, ''), 'message': row.message,
             'case_url': url_for('cases.show_case', case_id=row.case_id) if row.case_id else None}
            for row in batch_rows(db(), batch, current_scope())]


def progress_payload(batch: ImportBatch) -> dict[str, Any]:
    """A batch's counts and rows, as :class:`web.imports.schemas.BatchProgressSchema` dumps them."""
    return {'id': batch.id, 'status': batch.status, 'status_label': label(BATCH_STATUS_LABELS, batch.status),
            'done': batch.is_done, 'total': batch.total_count, 'imported': batch.imported_count,
            'failed': batch.failed_count, 'pending': batch.pending_count, 'rows': row_payload(batch)}
