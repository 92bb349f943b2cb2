"""URLs of the cases area."""

from __future__ import annotations

from flask import Blueprint

from web.cases.casefile import ExportCaseFileView, ShowCaseFileView
from web.cases.controllers import (
    CaseListView,
    NewCaseView,
    RevealCaseView,
    SearchCasesView,
    ShowCaseQrView,
    ShowCaseView,
    ShowDocumentView,
    ShowRequestFormView,
    ShowStartFormView,
    StartCaseView,
    StartRequestView,
)

bp = Blueprint('cases', __name__, template_folder='templates')

bp.add_url_rule('/cases', 'list_cases', view_func=CaseListView.as_view('list_cases'), methods=['GET'])
bp.add_url_rule('/cases', 'search_cases', view_func=SearchCasesView.as_view('search_cases'), methods=['POST'])
bp.add_url_rule('/cases/new', 'new_case', view_func=NewCaseView.as_view('new_case'))
bp.add_url_rule('/cases/new/<key>', 'show_start_form', view_func=ShowStartFormView.as_view('show_start_form'),
                methods=['GET'])
bp.add_url_rule('/cases/new/<key>', 'start_case', view_func=StartCaseView.as_view('start_case'),
                methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>', 'show_case', view_func=ShowCaseView.as_view('show_case'))
bp.add_url_rule('/cases/<int:case_id>/sensitive', 'reveal_case', view_func=RevealCaseView.as_view('reveal_case'),
                methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>/qr.svg', 'show_case_qr', view_func=ShowCaseQrView.as_view('show_case_qr'),
                methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/requests/<key>', 'show_request_form',
                view_func=ShowRequestFormView.as_view('show_request_form'), methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/requests/<key>', 'start_request',
                view_func=StartRequestView.as_view('start_request'), methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>/documents/<int:document_id>', 'show_document',
                view_func=ShowDocumentView.as_view('show_document'), methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/casefile', 'show_casefile', view_func=ShowCaseFileView.as_view('show_casefile'),
                methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/casefile', 'export_casefile',
                view_func=ExportCaseFileView.as_view('export_casefile'), methods=['POST'])
