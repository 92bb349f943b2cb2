"""Helpers of the migration pages: choosing the version pair, labels, the preview page and progress payloads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app, render_template, url_for
from flask_babel import gettext

from engine.errors import NotFound
from engine.i18n import N_
from engine.migration import CHANGE_LABELS, TaskPreview, batch_items, limits, preview, running_counts
from engine.models.definitions import ProcessDefinition
from engine.models.migrations import MigrationBatch
from web.core.auth import current_scope
from web.core.database import db
from web.core.pages import translate
from web.core.templating import list_separator, local_datetime

BATCH_STATUS_LABELS = {'queued': N_('排队中'), 'running': N_('迁移中'), 'done': N_('已完成')}
ITEM_STATUS_LABELS = {'pending': N_('待迁移'), 'migrated': N_('已迁移'), 'failed': N_('失败'), 'skipped': N_('已跳过')}
ITEM_BADGES = {'pending': '', 'migrated': 'badge-done', 'failed': 'badge-danger', 'skipped': 'badge-warn'}
OUTCOME_LABELS = {'kept': N_('保留'), 'changed': N_('有改动'), 'removed': N_('已删除')}
OUTCOME_BADGES = {'kept': 'badge-done', 'changed': 'badge-warn', 'removed': 'badge-danger'}
STATE_LABELS = {'ready': N_('待办'), 'waiting': N_('等待事件'), 'started': N_('子流程进行中')}
INSTANCE_STATUS_LABELS = {'running': N_('办理中'), 'waiting': N_('等待中'), 'error': N_('出错'),
                          'suspended': N_('已暂停'), 'completed': N_('已办结')}
#: the designer area's page of one key (web/designer), linked back to when it is installed
DEFINITION_ENDPOINT = 'designer.show_definition'


def label(table: Mapping[str, str], value: str) -> str:
    """``value``'s label from ``table`` in the reader's language (the value itself if it has none)."""
    return gettext(table[value]) if value in table else value


def change_text(task: TaskPreview) -> str:
    """What changed in a task, in words: ``名称、期限等属性``."""
    return list_separator().join(label(CHANGE_LABELS, kind) for kind in task.changes)


def definition_url(key: str) -> str | None:
    """The designer's page of ``key``, if that area is installed."""
    if DEFINITION_ENDPOINT not in current_app.view_functions:
        return None
    return url_for(DEFINITION_ENDPOINT, key=key)


def find_version(versions: Sequence[ProcessDefinition], number: int | None) -> ProcessDefinition:
    """The definition of version ``number`` among ``versions``, or NotFound."""
    for definition in versions:
        if definition.version == number:
            return definition
    raise NotFound('版本不存在')


def _as_int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 10 else None


def default_pair(versions: Sequence[ProcessDefinition],
                 counts: Mapping[int, int]) -> tuple[ProcessDefinition, ProcessDefinition]:
    """The newest version as target; as source the newest older version that still has instances."""
    target = versions[-1]
    older = [v for v in versions if v.version < target.version]
    with_instances = [v for v in older if counts.get(v.id)]
    source = (with_instances or older or [target])[-1]
    return source, target


def chosen_pair(versions: Sequence[ProcessDefinition], counts: Mapping[int, int],
                args: Mapping[str, str]) -> tuple[ProcessDefinition, ProcessDefinition]:
    """The pair named by ``from``/``to`` (version numbers), each defaulting as :func:`default_pair` does.

    :raises NotFound: a version number that the key does not have
    """
    source, target = default_pair(versions, counts)
    from_number, to_number = _as_int(args.get('from')), _as_int(args.get('to'))
    if from_number is not None:
        source = find_version(versions, from_number)
    if to_number is not None:
        target = find_version(versions, to_number)
    return source, target


def render_new(key: str, versions: Sequence[ProcessDefinition], source: ProcessDefinition,
               target: ProcessDefinition, *, values: Mapping[str, Any] | None = None,
               errors: Mapping[str, list[str]] | None = None, message: str | None = None) -> str:
    """The version picker and, for two different versions, the preview of every unfinished instance of ``source``.

    :param values: what the user submitted (the reason, the ticked instances), shown again beside ``errors``
    """
    session, scope = db(), current_scope()
    counts = running_counts(session, key, scope)
    previews = preview(session, source, target, scope=scope) if source.id != target.id else []
    values = values or {}
    ticked = {int(i) for i in values.get('instance', ()) if str(i).isdigit()}
    return render_template(
        'migrations/new.html', key=key, versions=versions, source=source, target=target, counts=counts,
        previews=previews, movable=sum(1 for p in previews if p.can_migrate),
        truncated=counts.get(source.id, 0) > len(previews) and len(previews) >= limits.preview_max,
        reason=values.get('reason', ''), ticked=ticked, errors=_field_errors(errors or {}),
        message=translate(message) if message else None, definition_url=definition_url(key),
        instance_status=lambda status: label(INSTANCE_STATUS_LABELS, status),
        outcome_label=lambda outcome: label(OUTCOME_LABELS, outcome),
        outcome_badge=lambda outcome: OUTCOME_BADGES.get(outcome, ''),
        state_label=lambda state: label(STATE_LABELS, state))


def _field_errors(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {name: [translate(m) for m in messages] for name, messages in errors.items()}


def item_payload(batch: MigrationBatch) -> list[dict[str, Any]]:
    """The batch's visible items for the page and the progress call."""
    return [{'id': item.id, 'instance_id': item.instance_id, 'case_number': case.number,
             'org_unit': case.org_unit.name, 'status': item.status,
             'status_label': label(ITEM_STATUS_LABELS, item.status), 'badge': ITEM_BADGES.get(item.status, ''),
             'message': item.message, 'finished': local_datetime(item.finished_dt) if item.finished_dt else None}
            for item, case in batch_items(db(), batch, current_scope())]


def progress_payload(batch: MigrationBatch) -> dict[str, Any]:
    """A batch's counts and items, as :class:`web.migrations.schemas.BatchProgressSchema` dumps them."""
    return {'id': batch.id, 'status': batch.status, 'status_label': label(BATCH_STATUS_LABELS, batch.status),
            'done': batch.is_done, 'total': batch.total_count, 'migrated': batch.migrated_count,
            'failed': batch.failed_count, 'skipped': batch.skipped_count, 'pending': batch.pending_count,
            'items': item_payload(batch)}
