"""Helpers of the designer pages: the designer's subtrees, downloads, labels, links to other areas."""

from __future__ import annotations

import io
from typing import Any

from flask import Response, current_app, send_file, url_for
from flask_babel import gettext

from engine.access import DESIGNER, Scope
from engine.i18n import N_
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import DefinitionDraft
from engine.versions import KeySummary
from web.designer.schemas import ReportSchema

#: the endpoint of the instance migration pages (web/migrations), linked from a key's versions when it exists
MIGRATION_ENDPOINT = 'migrations.new_migration'
KIND_LABELS = {'bpmn': N_('流程（BPMN）'), 'dmn': N_('决策表（DMN）')}
STATUS_LABELS = {'running': N_('办理中'), 'waiting': N_('等待中'), 'error': N_('出错'), 'suspended': N_('已暂停')}
MIMETYPES = {'bpmn': 'application/bpmn+xml', 'dmn': 'application/dmn+xml'}


def designer_paths(scope: Scope) -> tuple[str, ...]:
    """The subtrees a designer counts instances in: the units of their ``designer`` memberships."""
    return tuple(sorted({path for group, path in scope.grants if group == DESIGNER}))


def kind_label(kind: str) -> str:
    """``bpmn`` → 流程（BPMN）, in the reader's language."""
    return gettext(KIND_LABELS.get(kind, kind))


def status_label(status: str) -> str:
    """An instance status in words."""
    return gettext(STATUS_LABELS.get(status, status))


def migration_url(key: str) -> str | None:
    """Where running instances of ``key`` are moved to another version; None while that area is not installed."""
    if MIGRATION_ENDPOINT not in current_app.view_functions:
        return None
    return url_for(MIGRATION_ENDPOINT, key=key)


def version_filename(definition: ProcessDefinition) -> str:
    """``dispute_mediation-v3.bpmn``."""
    return f'{definition.key}-v{definition.version}.{definition.kind}'


def draft_filename(draft: DefinitionDraft) -> str:
    """``dispute_mediation-draft.bpmn``."""
    return f'{draft.key}-draft.{draft.kind}'


def xml_download(xml: str, filename: str, kind: str) -> Response:
    """The XML as a file download (never rendered by the browser)."""
    response = send_file(io.BytesIO(xml.encode('utf-8')), mimetype=MIMETYPES.get(kind, 'application/xml'),
                         as_attachment=True, download_name=filename)
    response.headers['Cache-Control'] = 'private, no-store'
    return response


def diff_pair(summary: KeySummary, left: int | None, right: int | None) -> tuple[ProcessDefinition,
                                                                                 ProcessDefinition] | None:
    """The two versions to compare: the requested ids if both belong to the key, else the two newest."""
    by_id = {v.definition.id: v.definition for v in summary.versions}
    if left in by_id and right in by_id and left != right:
        return by_id[left], by_id[right]  # type: ignore[index]
    if len(summary.versions) < 2:
        return None
    return summary.versions[1].definition, summary.versions[0].definition


def report_payload(report: Any) -> dict[str, Any]:
    """A validation report as the browser reads it: ``{"errors": [...], "warnings": [...]}``."""
    payload: dict[str, Any] = ReportSchema().dump(report)
    return payload
