"""Template helpers of the diagram partial, registered as Jinja globals by the blueprint.

The pages that include ``diagrams/_diagram.html`` have already checked that the reader may see the
case; these helpers only read what the partial shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import g, url_for
from flask_babel import gettext
from sqlalchemy.exc import SQLAlchemyError

from engine.diagrams import ActiveStep, StepTime, instance_diagram, step_times
from engine.i18n import N_
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from web.core.database import db

log = logging.getLogger(__name__)

KIND_LABELS = {'user_task': N_('待办理'), 'timer': N_('等待计时'), 'message': N_('等待消息'),
               'event': N_('等待事件'), 'subprocess': N_('子流程进行中')}


@dataclass(frozen=True)
class StepLine:
    """One current step as the text next to the diagram reads it: ``审核登记情况（待办理）``."""

    name: str
    state: str


def diagram_url(instance: ProcessInstance) -> str:
    """Where the browser fetches ``instance``'s diagram data."""
    return url_for('diagrams.show_diagram_data', case_id=instance.case_id, instance_id=instance.id)


def diagram_steps(instance: ProcessInstance) -> list[StepLine] | None:
    """The steps ``instance`` stands at now, in words; None when its state cannot be read.

    A diagram must never break the page it sits on: a state that fails to load is logged and shown as
    unreadable. A database failure is left to the page's own error handling.
    """
    cache: dict[tuple[int, int], list[StepLine] | None] = g.setdefault('diagram_steps', {})
    key = (instance.id, instance.revision)
    if key not in cache:
        try:
            steps = instance_diagram(db(), instance).active
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception('could not read the diagram state of instance %s', instance.id)
            cache[key] = None
        else:
            cache[key] = _lines(steps)
    return cache[key]


def _lines(steps: tuple[ActiveStep, ...]) -> list[StepLine]:
    seen: dict[str, StepLine] = {}
    for step in steps:
        seen.setdefault(step.bpmn_id, StepLine(step.name, gettext(KIND_LABELS[step.kind])))
    return list(seen.values())


def case_diagrams(case: Case) -> list[ProcessInstance]:
    """The instances the case page draws: its lifecycle, then the requests still running."""
    lifecycle = [i for i in case.instances if i.is_lifecycle]
    running = [i for i in case.instances if not i.is_lifecycle and i.status != 'completed']
    return lifecycle + running


# -- time spent per step ---------------------------------------------------------------------------------

STEP_KIND_LABELS = {'user_task': N_('办理环节'), 'timer': N_('计时等待')}


def duration_text(seconds: int) -> str:
    """A span of time in words, to the minute: ``3 天 4 小时``, ``2 小时 5 分钟``, ``不到 1 分钟``."""
    minutes = seconds // 60
    if minutes < 1:
        return gettext('不到 1 分钟')
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return gettext('%(days)s 天 %(hours)s 小时', days=days, hours=hours) if hours \
            else gettext('%(days)s 天', days=days)
    if hours:
        return gettext('%(hours)s 小时 %(minutes)s 分钟', hours=hours, minutes=minutes) if minutes \
            else gettext('%(hours)s 小时', hours=hours)
    return gettext('%(minutes)s 分钟', minutes=minutes)


@dataclass(frozen=True)
class TimeRow:
    """One step of the 各环节用时 table and of the diagram's time badges."""

    bpmn_id: str
    name: str
    kind: str
    passes: int
    duration: str
    is_open: bool
    started_dt: datetime
    ended_dt: datetime | None


def time_rows(times: tuple[StepTime, ...]) -> list[TimeRow]:
    """The steps' times in words, in the order they were first reached."""
    return [TimeRow(t.bpmn_id, t.name, gettext(STEP_KIND_LABELS.get(t.kind, t.kind)), t.passes,
                    duration_text(t.seconds), t.is_open, t.started_dt, t.ended_dt) for t in times]


def diagram_times(instance: ProcessInstance) -> list[TimeRow]:
    """The time ``instance`` spent at each user task and timer, for the table under its diagram."""
    return time_rows(step_times(db(), instance))
