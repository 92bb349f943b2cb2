"""迁移在办实例: preview a version pair's unfinished instances, move one at once or many through the worker.

Only designers reach these pages (403 otherwise), and only instances of cases below the units where they
hold the designer group (404 for any other). Every move goes through :mod:`engine.migration`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine.access import DESIGNER
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.migration import (
    MigrationRefused,
    get_batch,
    get_instance,
    list_batches,
    migrate_instance,
    running_counts,
    start_batch,
    versions_of,
)
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import load_form
from web.core.pages import JsonPollView, PageView, translate
from web.migrations.schemas import BatchProgressSchema, MoveOneSchema, MoveSchema
from web.migrations.util import (
    BATCH_STATUS_LABELS,
    chosen_pair,
    definition_url,
    find_version,
    item_payload,
    label,
    progress_payload,
    render_new,
)

MSG_DESIGNERS_ONLY = N_('只有流程设计人员可以迁移流程实例。')


def _designers_only() -> None:
    if not current_scope().has_role(DESIGNER):
        raise AccessDenied(MSG_DESIGNERS_ONLY)


def _ticked() -> list[int]:
    """The ticked instance checkboxes (anything that is not an id is ignored: it cannot name an instance)."""
    return [int(value) for value in request.form.getlist('instance') if value.isdigit() and len(value) < 19]


def _submitted() -> dict[str, Any]:
    return {'reason': request.form.get('reason', ''), 'instance': request.form.getlist('instance')}


class MigrationPage(PageView):
    """Base of the migration pages: designers only."""

    def check_access(self) -> None:
        _designers_only()


class KeyPage(MigrationPage):
    """A page about one process key: loads its versions (404 for a key never deployed)."""

    def load(self, key: str) -> None:
        _designers_only()  # before any lookup: a non-designer gets 403, never a 404 that reveals what exists
        self.key = key
        self.versions = versions_of(db(), key)

    def pair(self, args: Any) -> Any:
        """The version pair named in ``args`` (query string or form), with defaults."""
        return chosen_pair(self.versions, running_counts(db(), self.key, current_scope()), args)

    def render_error(self, exc: ValidationFailed) -> ResponseReturnValue:
        """The preview page again, with the submitted values and every field's message (400)."""
        source, target = self.pair(request.form)
        return render_new(self.key, self.versions, source, target, values=_submitted(), errors=exc.fields,
                          message=exc.message), 400


class NewMigrationView(KeyPage):
    """Pick the version pair of a key, then see what moving each unfinished instance would do."""

    def get(self, key: str) -> ResponseReturnValue:
        source, target = self.pair(request.args)
        return render_new(key, self.versions, source, target)


class StartBatchView(KeyPage):
    """Queue the move of the ticked instances; the worker moves them one by one (a reason is required)."""

    def post(self, key: str) -> ResponseReturnValue:
        args = load_form(MoveSchema(), request.form)
        source = find_version(self.versions, args['from_version'])
        target = find_version(self.versions, args['to_version'])
        batch = start_batch(db(), source, target, _ticked(), actor=current_actor(), reason=args['reason'],
                            scope=current_scope())
        flash(gettext('已提交 %(count)s 个实例的迁移，正在后台逐个处理。', count=batch.total_count), 'success')
        return redirect(url_for('migrations.show_batch', batch_id=batch.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed):
            return self.render_error(exc)
        return super().handle_error(exc)


class MigrateInstanceView(KeyPage):
    """Move one instance from its preview row, at once, in this request's transaction."""

    def load(self, instance_id: int) -> None:
        _designers_only()
        self.instance = get_instance(db(), instance_id, current_scope())
        super().load(self.instance.definition.key)

    def back(self) -> str:
        """The preview of the same version pair."""
        return url_for('migrations.new_migration', key=self.key, **{
            name: request.form[name] for name in ('from', 'to') if request.form.get(name, '').isdigit()})

    def post(self, instance_id: int) -> ResponseReturnValue:
        args = load_form(MoveOneSchema(), request.form)
        target = find_version(self.versions, args['to_version'])
        result = migrate_instance(db(), instance_id, target, actor=current_actor(), reason=args['reason'],
                                  scope=current_scope(), expected_revision=args['revision'])
        flash(gettext('已将案件 %(number)s 的流程迁移到第 %(version)s 版。', number=result.preview.case_number,
                      version=target.version), 'success')
        return redirect(self.back())

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed):
            return self.render_error(exc)
        if isinstance(exc, NotFound) or not hasattr(self, 'key'):
            return super().handle_error(exc)
        problems = getattr(exc, 'problems', ()) if isinstance(exc, MigrationRefused) else ()
        flash(' '.join((translate(exc.message), *problems)), 'error')
        return redirect(self.back())


class BatchListView(MigrationPage):
    """The newest batches: who moved what from which version to which, and how it went."""

    def get(self) -> ResponseReturnValue:
        key = request.args.get('key') or None
        return render_template('migrations/batches.html', key=key,
                               batches=list_batches(db(), current_scope(), key=key),
                               status_labels=BATCH_STATUS_LABELS, label=label)


class BatchView(MigrationPage):
    """One batch: its counts and each instance's result, refreshed while the worker goes on."""

    def load(self, batch_id: int) -> None:
        _designers_only()
        self.batch = get_batch(db(), batch_id, current_scope())

    def get(self, batch_id: int) -> ResponseReturnValue:
        batch = self.batch
        return render_template('migrations/batch.html', batch=batch, items=item_payload(batch),
                               status_label=label(BATCH_STATUS_LABELS, batch.status),
                               definition_url=definition_url(batch.key))


class BatchProgressView(JsonPollView):
    """A batch's progress as JSON, polled by the batch page."""

    def check_access(self) -> None:
        _designers_only()

    def load(self, batch_id: int) -> None:
        _designers_only()
        self.batch = get_batch(db(), batch_id, current_scope())

    def get(self, batch_id: int) -> ResponseReturnValue:
        return self.answer(BatchProgressSchema().dump(progress_payload(self.batch)))
