"""Helpers of the supervision pages: the search and audit-log filter forms' choices, event labels, audit rows
in words, and the export files' names."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Session

from engine.access import SUPERVISOR, Scope
from engine.audit import SYSTEM_ACTOR
from engine.clock import LOCAL_ZONE, now
from engine.i18n import N_
from engine.models.audit import AuditEvent
from engine.models.org_units import OrgUnit
from engine.search import InstanceHit
from web.cases.util import EVENT_LABELS, INSTANCE_STATUS_LABELS, KEY_LABELS, label_of
from web.core.pages import translate
from web.tasks.util import Choice, ChoiceGroup, unit_choices

#: events outside any case: deployments, drafts, the calendar, users, saved filters, this log itself
SYSTEM_EVENT_LABELS = {
    'definition.deployed': N_('部署流程定义'), 'draft.created': N_('创建流程草稿'), 'draft.deleted': N_('删除流程草稿'),
    'draft.deployed': N_('部署流程草稿'), 'calendar.override_changed': N_('调整工作日历'),
    'calendar.override_removed': N_('删除工作日历调整'), 'user.created': N_('创建用户'), 'user.locked': N_('锁定用户'),
    'membership.added': N_('授予角色'), 'filter.saved': N_('保存筛选'), 'filter.deleted': N_('删除筛选'),
    'audit.exported': N_('导出审计日志'), 'audit.verified': N_('校验审计链'),
    'migration.batch_started': N_('开始批量迁移'), 'migration.batch_finished': N_('批量迁移结束'),
    'ranking.weights_changed': N_('调整评比权重'), 'ranking.published': N_('发布月度评比'),
    'access.refused': N_('访问范围外的记录（已拒绝）'), 'user.updated': N_('修改用户'),
    'user.deactivated': N_('停用用户'), 'user.reactivated': N_('启用用户'), 'user.password_reset': N_('重置密码'),
    'user.unlocked': N_('解锁用户'), 'user.totp_removed': N_('重置双因素认证'), 'membership.removed': N_('撤销角色'),
}
#: every event kind the audit log names in words
AUDIT_EVENT_LABELS = {**EVENT_LABELS, **SYSTEM_EVENT_LABELS}
#: the kind select's groups, by the part of the kind before its dot
FAMILY_LABELS = {
    'case': N_('案件'), 'instance': N_('流程实例'), 'task': N_('任务'), 'reminder': N_('提醒'), 'request': N_('申请'),
    'document': N_('文书'), 'comment': N_('意见'), 'attachment': N_('附件'), 'dispute': N_('纠纷调解'),
    'job': N_('作业'), 'definition': N_('流程定义'), 'draft': N_('流程草稿'), 'calendar': N_('工作日历'),
    'user': N_('用户'), 'membership': N_('角色'), 'filter': N_('筛选'), 'audit': N_('审计日志'),
    'clock': N_('办理期限'), 'migration': N_('版本迁移'), 'ranking': N_('工作评比'),
    'access': N_('访问控制'),
}
HAS_ERROR_LABELS = {'1': N_('有错误记录'), '0': N_('无错误记录')}
#: longest error text a result row shows before cutting it short (the case page has it whole)
ERROR_SHOWN = 160


def event_label(kind: str) -> str:
    """An event kind in words (the kind itself when it has no label yet)."""
    return label_of(AUDIT_EVENT_LABELS, kind)


def supervised_scope(scope: Scope) -> Scope:
    """``scope`` with its supervisor grants only: the units whose cases a supervisor searches."""
    return Scope(scope.user_id, tuple((group, path) for group, path in scope.grants if group == SUPERVISOR))


def supervised_unit_choices(session: Session, scope: Scope, selected: str | None = None) -> list[Choice]:
    """The org-unit select: the units below those the caller supervises, indented under their parents."""
    return unit_choices(session, supervised_scope(scope), selected)


def status_choices() -> list[Choice]:
    """The instance status select."""
    return [Choice(status, gettext(label)) for status, label in INSTANCE_STATUS_LABELS.items()]


def has_error_choices() -> list[Choice]:
    """The 错误记录 select."""
    return [Choice(value, gettext(label)) for value, label in HAS_ERROR_LABELS.items()]


def kind_choices() -> list[ChoiceGroup]:
    """The event-kind select: one group per family, its first option the whole family (``task.*``)."""
    families: dict[str, list[Choice]] = {}
    for kind in sorted(AUDIT_EVENT_LABELS):
        family = kind.split('.')[0]
        families.setdefault(family, []).append(Choice(kind, gettext(AUDIT_EVENT_LABELS[kind])))
    groups = []
    for family, choices in families.items():
        name = gettext(FAMILY_LABELS[family]) if family in FAMILY_LABELS else family
        everything = Choice(f'{family}.*', gettext('全部“%(family)s”事件', family=name))
        groups.append(ChoiceGroup(name, [everything, *choices]))
    return groups


# -- search results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HitRow:
    """One search result as the table shows it."""

    hit: InstanceHit
    status: str
    steps: str
    error: str | None


def hit_rows(hits: Sequence[InstanceHit]) -> list[HitRow]:
    """The hits with their status in words, their current steps and their error cut short."""
    rows = []
    for hit in hits:
        message = hit.instance.error_message
        if message and len(message) > ERROR_SHOWN:
            message = message[:ERROR_SHOWN] + '…'
        steps = '、'.join(dict.fromkeys(task.title for task in hit.open_tasks))
        rows.append(HitRow(hit, label_of(INSTANCE_STATUS_LABELS, hit.instance.status), steps, message))
    return rows


# -- the audit log -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditValue:
    """One key of an event's before/after values, as the log's details show it."""

    label: str
    before: str
    after: str


@dataclass(frozen=True)
class AuditRow:
    """One audit event as the log's table shows it."""

    event: AuditEvent
    actor: str
    what: str
    case_number: str | None
    unit: str
    values: list[AuditValue]
    note: str | None


def _text(value: Any) -> str:
    if value is None or value == '':
        return '—'
    if isinstance(value, bool):
        return gettext('是') if value else gettext('否')
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _values(event: AuditEvent) -> list[AuditValue]:
    before, after = event.before or {}, event.after or {}
    return [AuditValue(label_of(KEY_LABELS, key), _text(before[key]) if key in before else '',
                       _text(after[key]) if key in after else '') for key in dict.fromkeys([*before, *after])]


def unit_names(session: Session, paths: set[str]) -> dict[str, str]:
    """Names of the units at ``paths``."""
    if not paths:
        return {}
    return dict(session.execute(sa.select(OrgUnit.path, OrgUnit.name).where(OrgUnit.path.in_(paths))).tuples().all())


def audit_rows(session: Session, events: Sequence[AuditEvent], case_numbers: Mapping[int, str]) -> list[AuditRow]:
    """The events in words: who (the system translated), what, which case and unit, every value, the note."""
    units = unit_names(session, {e.org_path for e in events if e.org_path})
    rows = []
    for e in events:
        actor = gettext(SYSTEM_ACTOR) if e.actor_id is None and e.actor_name == SYSTEM_ACTOR else e.actor_name
        rows.append(AuditRow(e, actor, event_label(e.kind), case_numbers.get(e.case_id) if e.case_id else None,
                             units.get(e.org_path or '', ''), _values(e), translate(e.note) if e.note else None))
    return rows


def export_filename(fmt: str) -> str:
    """``audit-log-20251026-0930.csv``: ASCII, so every browser keeps it, stamped with the local time."""
    stamp: datetime = now().astimezone(LOCAL_ZONE)
    return f'audit-log-{stamp:%Y%m%d-%H%M}.{fmt}'
