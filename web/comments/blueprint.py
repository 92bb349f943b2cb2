"""URLs of the comments area: the 意见与附件 panel's forms, the download, and the panel's template global."""

from __future__ import annotations

from flask import Blueprint

from engine.attachments import size_text
from web.comments.controllers import (
    AddAttachmentView,
    AddCommentView,
    DownloadAttachmentView,
    request_too_large,
)
from web.comments.util import case_discussion

bp = Blueprint('comments', __name__, template_folder='templates')

bp.add_url_rule('/cases/<int:case_id>/comments', 'add_comment', view_func=AddCommentView.as_view('add_comment'),
                methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>/attachments', 'add_attachment',
                view_func=AddAttachmentView.as_view('add_attachment'), methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>/attachments/<int:attachment_id>', 'download_attachment',
                view_func=DownloadAttachmentView.as_view('download_attachment'), methods=['GET'])

# The case page and the task page render the panel with one include; it asks for its own data.
bp.add_app_template_global(case_discussion)
bp.add_app_template_filter(size_text, 'file_size')
bp.register_error_handler(413, request_too_large)
