"""URLs of the designer area, and the template globals its pages use."""

from __future__ import annotations

from flask import Blueprint

from web.designer.controllers import (
    CreateDraftView,
    DefinitionListView,
    DefinitionView,
    DeleteDraftView,
    DeployDraftView,
    DiffView,
    DraftDataView,
    DraftFromVersionView,
    DraftListView,
    EditDraftView,
    ExportDraftView,
    ExportVersionView,
    ImportDraftView,
    SaveDraftView,
    ValidateDraftView,
    VersionView,
)
from web.designer.util import kind_label, status_label

bp = Blueprint('designer', __name__, template_folder='templates', url_prefix='/designer')

bp.add_url_rule('/', 'list_definitions', view_func=DefinitionListView.as_view('list_definitions'), methods=['GET'])
bp.add_url_rule('/definitions/<key>', 'show_definition', view_func=DefinitionView.as_view('show_definition'),
                methods=['GET'])
bp.add_url_rule('/versions/<int:definition_id>', 'show_version', view_func=VersionView.as_view('show_version'),
                methods=['GET'])
bp.add_url_rule('/versions/<int:definition_id>/source', 'export_version',
                view_func=ExportVersionView.as_view('export_version'), methods=['GET'])
bp.add_url_rule('/versions/<int:definition_id>/draft', 'draft_from_version',
                view_func=DraftFromVersionView.as_view('draft_from_version'), methods=['POST'])
bp.add_url_rule('/diff', 'show_diff', view_func=DiffView.as_view('show_diff'), methods=['GET'])
bp.add_url_rule('/drafts', 'list_drafts', view_func=DraftListView.as_view('list_drafts'), methods=['GET'])
bp.add_url_rule('/drafts', 'create_draft', view_func=CreateDraftView.as_view('create_draft'), methods=['POST'])
bp.add_url_rule('/drafts/import', 'import_draft', view_func=ImportDraftView.as_view('import_draft'),
                methods=['POST'])
bp.add_url_rule('/drafts/<int:draft_id>', 'edit_draft', view_func=EditDraftView.as_view('edit_draft'),
                methods=['GET'])
bp.add_url_rule('/drafts/<int:draft_id>/source', 'export_draft', view_func=ExportDraftView.as_view('export_draft'),
                methods=['GET'])
bp.add_url_rule('/drafts/<int:draft_id>/delete', 'delete_draft', view_func=DeleteDraftView.as_view('delete_draft'),
                methods=['POST'])
bp.add_url_rule('/drafts/<int:draft_id>/data', 'draft_data', view_func=DraftDataView.as_view('draft_data'),
                methods=['GET'])
bp.add_url_rule('/drafts/<int:draft_id>/save', 'save_draft', view_func=SaveDraftView.as_view('save_draft'),
                methods=['POST'])
bp.add_url_rule('/drafts/<int:draft_id>/validate', 'validate_draft',
                view_func=ValidateDraftView.as_view('validate_draft'), methods=['POST'])
bp.add_url_rule('/drafts/<int:draft_id>/deploy', 'deploy_draft', view_func=DeployDraftView.as_view('deploy_draft'),
                methods=['POST'])

# Prefixed: filters are app-wide, and other areas label kinds and statuses their own way.
bp.add_app_template_filter(kind_label, 'designer_kind')
bp.add_app_template_filter(status_label, 'designer_status')
