"""Template helpers of the diagram partial, registered as Jinja globals by the blueprint.

The pages that include ``diagrams/_diagram.html`` have already checked that the reader may see the
case; these helpers only read what the partial shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import g, url_for
from flask_babel import gettext
from sqlalchemy.exc import SQLAlchemyError

from engine.diagrams import ActiveStep, instance_diagram
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
