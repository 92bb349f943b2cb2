"""URLs of the migration area (under the designer's ``/designer``)."""

from __future__ import annotations

from flask import Blueprint

from web.migrations.controllers import (
    BatchListView,
    BatchProgressView,
    BatchView,
    MigrateInstanceView,
    NewMigrationView,
    StartBatchView,
)
from web.migrations.util import change_text

bp = Blueprint('migrations', __name__, template_folder='templates', url_prefix='/designer/migrations')

bp.add_url_rule('/', 'list_batches', view_func=BatchListView.as_view('list_batches'), methods=['GET'])
bp.add_url_rule('/new/<key>', 'new_migration', view_func=NewMigrationView.as_view('new_migration'), methods=['GET'])
bp.add_url_rule('/new/<key>', 'start_batch', view_func=StartBatchView.as_view('start_batch'), methods=['POST'])
bp.add_url_rule('/instances/<int:instance_id>', 'migrate_instance',
                view_func=MigrateInstanceView.as_view('migrate_instance'), methods=['POST'])
bp.add_url_rule('/batches/<int:batch_id>', 'show_batch', view_func=BatchView.as_view('show_batch'), methods=['GET'])
bp.add_url_rule('/batches/<int:batch_id>/progress', 'batch_progress',
                view_func=BatchProgressView.as_view('batch_progress'), methods=['GET'])

# Prefixed: template filters are app-wide.
bp.add_app_template_filter(change_text, 'migration_changes')
