"""Helpers of the notification pages: kind labels and where opening a notification leads."""

from __future__ import annotations

from flask import url_for
from sqlalchemy.orm import Session

from engine.access import Scope, can_view_case
from engine.i18n import N_
from engine.models.cases import Case
from engine.models.notifications import Notification
from engine.models.tasks import HumanTask

KIND_LABELS = {'reminder': N_('到期提醒'), 'escalation': N_('超期升级'), 'assigned': N_('任务指派'),
               'delegated': N_('委托办理'), 'resolved': N_('委托已办结'), 'red_alert': N_('红色预警')}


def target_url(session: Session, scope: Scope, notification: Notification) -> str:
    """The notification's task page if the user still sees the task, else its case page, else the list."""
    task = session.get(HumanTask, notification.human_task_id) if notification.human_task_id else None
    if task is not None and scope.can_view_task(task):
        return url_for('tasks.show_task', task_id=task.id)
    case = session.get(Case, notification.case_id) if notification.case_id else None
    if case is not None and can_view_case(session, scope, case):
        return url_for('cases.show_case', case_id=case.id)
    return url_for('notifications.list_notifications')
