"""URLs of the public case page (一案一码) and of the staff's 签发查询密码 button."""

from __future__ import annotations

from flask import Blueprint

from web.public.controllers import (
    IssuePinView,
    ShowPartyDocumentView,
    ShowPublicCaseView,
    ShowPublicQrView,
    VerifyPublicCaseView,
)

bp = Blueprint('public', __name__, template_folder='templates')

bp.add_url_rule('/c/<code>', 'show_case', view_func=ShowPublicCaseView.as_view('show_case'), methods=['GET'])
bp.add_url_rule('/c/<code>', 'verify_case', view_func=VerifyPublicCaseView.as_view('verify_case'),
                methods=['POST'])
bp.add_url_rule('/c/<code>/documents/<int:document_id>', 'show_document',
                view_func=ShowPartyDocumentView.as_view('show_document'), methods=['GET'])
bp.add_url_rule('/c/<code>/qr.svg', 'show_qr', view_func=ShowPublicQrView.as_view('show_qr'), methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/public-pin', 'issue_pin', view_func=IssuePinView.as_view('issue_pin'),
                methods=['POST'])
