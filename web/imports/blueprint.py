"""URLs of the bulk-import area (under ``/cases/import``)."""

from __future__ import annotations

from flask import Blueprint

from web.imports.controllers import (
    BatchProgressView,
    BatchView,
    CheckImportView,
    ImportHomeView,
    StartImportView,
    TemplateView,
)

bp = Blueprint('imports', __name__, template_folder='templates', url_prefix='/cases/import')

bp.add_url_rule('/', 'new_import', view_func=ImportHomeView.as_view('new_import'), methods=['GET'])
bp.add_url_rule('/templates/<kind>.<fmt>', 'download_template', view_func=TemplateView.as_view('download_template'),
                methods=['GET'])
bp.add_url_rule('/check', 'check_import', view_func=CheckImportView.as_view('check_import'), methods=['POST'])
bp.add_url_rule('/', 'start_import', view_func=StartImportView.as_view('start_import'), methods=['POST'])
bp.add_url_rule('/batches/<int:batch_id>', 'show_batch', view_func=BatchView.as_view('show_batch'), methods=['GET'])
bp.add_url_rule('/batches/<int:batch_id>/progress', 'batch_progress',
                view_func=BatchProgressView.as_view('batch_progress'), methods=['GET'])
