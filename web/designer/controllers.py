"""流程设计: deployed definitions and their versions, drafts in the modeler, validation and deployment, diffs.

Every page and call is for holders of the ``designer`` group (403 for anyone else). The pages are HTML;
the editor's save / validate / deploy calls are JSON with the API's error shape, and send the CSRF token
in the ``X-CSRFToken`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from marshmallow import Schema, ValidationError

from engine import drafts, versions
from engine.access import DESIGNER
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.drafts import DefinitionDraft
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import field_errors, load_form
from web.core.pages import PageView, translate
from web.core.views import BaseView, status_for
from web.designer.schemas import (
    DeployDraftSchema,
    DeployedSchema,
    DraftSchema,
    NewDraftSchema,
    RevisionSchema,
    SaveDraftSchema,
    SavedSchema,
)
from web.designer.util import (
    designer_paths,
    diff_pair,
    draft_filename,
    migration_url,
    report_payload,
    version_filename,
    xml_download,
)

MSG_DESIGNERS_ONLY = N_('只有流程设计人员可以使用流程设计。')
MSG_INVALID_BODY = N_('提交的数据有误。')
MSG_NO_FILE = N_('请选择要导入的 .bpmn 或 .dmn 文件。')
MSG_NOT_BPMN = N_('只有 BPMN 流程的版本可以比较。')


def _designers_only() -> None:
    if not current_scope().has_role(DESIGNER):
        raise AccessDenied(MSG_DESIGNERS_ONLY)


class DesignerPage(PageView):
    """Base of the designer's HTML pages."""

    def check_access(self) -> None:
        _designers_only()


class DesignerCall(BaseView):
    """Base of the editor's JSON calls: ``{"error", "message", "fields"}`` (plus ``report``) on refusal."""

    def check_access(self) -> None:
        _designers_only()

    def unauthenticated(self) -> ResponseReturnValue:
        return jsonify(error='unauthorized', message=gettext('请先登录。'), fields={}), 401

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        fields = {name: [translate(m) for m in messages] for name, messages in getattr(exc, 'fields', {}).items()}
        body: dict[str, Any] = {'error': exc.code, 'message': translate(exc.message), 'fields': fields}
        report = getattr(exc, 'report', None)
        if report is not None:
            body['report'] = report_payload(report)
        return jsonify(body), status_for(exc)


def _json_body(schema: Schema) -> dict[str, Any]:
    """The JSON body loaded through ``schema``; ValidationFailed with every field's message otherwise."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed(MSG_INVALID_BODY, {'_body': [MSG_INVALID_BODY]})
    try:
        return dict(schema.load(data, unknown='exclude'))
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {'_body': error.messages}
        raise ValidationFailed(MSG_INVALID_BODY, {str(k): [str(m) for m in (v if isinstance(v, list) else [v])]
                                                   for k, v in messages.items()}) from None


# -- deployed definitions ------------------------------------------------------------------------------

class DefinitionListView(DesignerPage):
    """Every key with its versions: who deployed each and when, unfinished instances and where they wait."""

    def get(self) -> ResponseReturnValue:
        keys = versions.summarise(db(), designer_paths(current_scope()))
        return render_template('designer/definitions.html', keys=keys)


class DefinitionView(DesignerPage):
    """One key: its versions with their instances per step, accepted warnings, and what can be done with them."""

    def load(self, key: str) -> None:
        self.summary = versions.summarise_key(db(), key, designer_paths(current_scope()))

    def get(self, key: str) -> ResponseReturnValue:
        ids = [v.definition.id for v in self.summary.versions]
        return render_template('designer/definition.html', summary=self.summary,
                               warnings=drafts.accepted_warnings(db(), ids), migration_url=migration_url(key))


class VersionPage(DesignerPage):
    """Base of the pages about one deployed version."""

    def load(self, definition_id: int) -> None:
        self.definition = versions.get_definition(db(), definition_id)


class VersionView(VersionPage):
    """One version drawn read-only, with its BPMN, SVG and PNG exports."""

    def get(self, definition_id: int) -> ResponseReturnValue:
        return render_template('designer/version.html', definition=self.definition)


class ExportVersionView(VersionPage):
    """The version's XML exactly as deployed, as a download."""

    def get(self, definition_id: int) -> ResponseReturnValue:
        definition = self.definition
        return xml_download(definition.source, version_filename(definition), definition.kind)


class DraftFromVersionView(VersionPage):
    """A new draft holding the version's source: change it and deploy it as the next version."""

    def post(self, definition_id: int) -> ResponseReturnValue:
        draft = drafts.draft_from_definition(db(), self.definition, actor=current_actor())
        flash(gettext('已从第 %(version)s 版创建草稿。', version=self.definition.version), 'success')
        return redirect(url_for('designer.edit_draft', draft_id=draft.id))


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, '')
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


class DiffView(DesignerPage):
    """Two versions of a key side by side, their differences drawn on both diagrams and listed."""

    def load(self) -> None:
        key = request.args.get('key', '').strip()
        if not key:
            raise NotFound(N_('请选择要比较的流程。'))
        self.summary = versions.summarise_key(db(), key, designer_paths(current_scope()))
        if self.summary.kind != 'bpmn':
            raise NotFound(MSG_NOT_BPMN)

    def get(self) -> ResponseReturnValue:
        pair = diff_pair(self.summary, _int_arg('left'), _int_arg('right'))
        return render_template('designer/diff.html', summary=self.summary, pair=pair)


# -- drafts -------------------------------------------------------------------------------------------

def _drafts_page(*, values: Mapping[str, str] | None = None, errors: Mapping[str, list[str]] | None = None,
                 message: str | None = None) -> str:
    return render_template('designer/drafts.html', drafts=drafts.list_drafts(db()),
                           values=values or {'kind': 'bpmn'}, errors=errors or {},
                           message=translate(message) if message else None)


class DraftListView(DesignerPage):
    """The drafts, and the forms to start one: blank, or an imported file."""

    def get(self) -> ResponseReturnValue:
        return _drafts_page()


class DraftFormView(DesignerPage):
    """Base of the forms on the drafts page: a refusal shows the page again with the fields' errors."""

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        errors = {name: field_errors(exc.fields, name) for name in exc.fields}
        values = {k: v for k, v in request.form.items() if k != 'csrf_token'}
        return _drafts_page(values=values, errors=errors, message=exc.message), 400


class CreateDraftView(DraftFormView):
    """新建: a blank process or decision table with the key and name given."""

    def post(self) -> ResponseReturnValue:
        args = load_form(NewDraftSchema(), request.form)
        draft = drafts.create_blank_draft(db(), args['kind'], args['key'], args['name'], actor=current_actor())
        return redirect(url_for('designer.edit_draft', draft_id=draft.id))


class ImportDraftView(DraftFormView):
    """导入: a .bpmn or .dmn file from elsewhere (Camunda Modeler, the MIWG reference files) as a draft."""

    def post(self) -> ResponseReturnValue:
        upload = request.files.get('file')
        if upload is None or not upload.filename:
            raise ValidationFailed(N_('数据有误，请检查标出的字段。'), {'file': [MSG_NO_FILE]})
        draft = drafts.import_draft(db(), upload.read(), upload.filename, actor=current_actor())
        flash(gettext('已导入 %(filename)s。', filename=upload.filename), 'success')
        return redirect(url_for('designer.edit_draft', draft_id=draft.id))


class DraftPage(DesignerPage):
    """Base of the pages about one draft."""

    def load(self, draft_id: int) -> None:
        self.draft: DefinitionDraft = drafts.get_draft(db(), draft_id)


class EditDraftView(DraftPage):
    """The modeler (BPMN) or the decision table editor (DMN) on the draft."""

    def get(self, draft_id: int) -> ResponseReturnValue:
        template = 'designer/modeler.html' if self.draft.kind == 'bpmn' else 'designer/dmn_editor.html'
        return render_template(template, draft=self.draft)


class ExportDraftView(DraftPage):
    """The draft's XML as last saved, as a download."""

    def get(self, draft_id: int) -> ResponseReturnValue:
        return xml_download(self.draft.xml, draft_filename(self.draft), self.draft.kind)


class DeleteDraftView(DraftPage):
    """Throw a draft away (audited); no deployed version changes."""

    def post(self, draft_id: int) -> ResponseReturnValue:
        name = self.draft.name
        drafts.delete_draft(db(), self.draft, actor=current_actor())
        flash(gettext('已删除草稿“%(name)s”。', name=name), 'success')
        return redirect(url_for('designer.list_drafts'))


class DraftCall(DesignerCall):
    """Base of the editor's JSON calls on one draft."""

    def load(self, draft_id: int) -> None:
        self.draft: DefinitionDraft = drafts.get_draft(db(), draft_id)


class DraftDataView(DraftCall):
    """The draft's XML and the revision the editor must name when it saves."""

    def get(self, draft_id: int) -> ResponseReturnValue:
        response = jsonify(DraftSchema().dump(self.draft))
        response.headers['Cache-Control'] = 'private, no-store'
        return response


class SaveDraftView(DraftCall):
    """保存: 200 with the new revision; 409 if someone saved since the editor's revision; 400 if not BPMN/DMN."""

    def post(self, draft_id: int) -> ResponseReturnValue:
        args = _json_body(SaveDraftSchema())
        draft = drafts.save_draft(db(), self.draft, args['xml'], revision=args['revision'], actor=current_actor())
        return jsonify(SavedSchema().dump(draft))


class ValidateDraftView(DraftCall):
    """校验: the report of the draft as saved at the editor's revision; stores nothing."""

    def post(self, draft_id: int) -> ResponseReturnValue:
        args = _json_body(RevisionSchema())
        drafts.check_revision(self.draft, args['revision'])
        report = drafts.validate_draft(db(), self.draft)
        return jsonify(valid=not report.errors, report=report_payload(report))


class DeployDraftView(DraftCall):
    """部署: the draft becomes the next version (201), or the report says why not (400 errors, 409 warnings)."""

    def post(self, draft_id: int) -> ResponseReturnValue:
        args = _json_body(DeployDraftSchema())
        result = drafts.deploy_draft(db(), self.draft, revision=args['revision'], actor=current_actor(),
                                     accept_warnings=args['accept_warnings'])
        definition = result.definition
        if result.created:
            flash(gettext('已部署“%(name)s”第 %(version)s 版。新案件将按此版本办理，已在办的案件仍按原版本。',
                          name=definition.name, version=definition.version), 'success')
        else:
            flash(gettext('内容与第 %(version)s 版相同，未创建新版本；草稿已移除。', version=definition.version),
                  'info')
        payload = {'id': definition.id, 'key': definition.key, 'version': definition.version,
                   'created': result.created, 'accepted_warnings': result.accepted_warnings,
                   'url': url_for('designer.show_definition', key=definition.key)}
        return jsonify(DeployedSchema().dump(payload)), 201 if result.created else 200
