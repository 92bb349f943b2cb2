"""接入事件: the alarms and referrals machine clients sent to units a supervisor watches, those that reached no
case first (never dropped: a person nobody knows, a closed case, a process that could not take it)."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue

from engine.access import can_view_case
from engine.events import count_attention, events_query
from engine.models.events import InboundEvent
from engine.search import require_supervisor
from web.core.auth import current_scope
from web.core.database import db
from web.core.pages import PageView
from workflows.shared.id_numbers import mask_id_number

#: the most events the page lists at once
EVENTS_SHOWN = 100


def unmatched_event_count() -> int:
    """The badge: events below the caller's supervised units that reached no case (0 for non-supervisors)."""
    paths = current_scope().supervisor_paths
    return count_attention(db(), paths) if paths else 0


class EventsView(PageView):
    """接入事件: undelivered events by default, every event with ``?all=1``; supervisors only."""

    def check_access(self) -> None:
        require_supervisor(current_scope())

    def get(self) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        show_all = request.args.get('all') == '1'
        rows = session.scalars(events_query(scope.supervisor_paths, attention_only=not show_all)
                               .limit(EVENTS_SHOWN)).all()
        return render_template('supervision/events.html', rows=[_row(event) for event in rows],
                               show_all=show_all, cut=len(rows) == EVENTS_SHOWN,
                               attention=count_attention(session, scope.supervisor_paths))


def _row(event: InboundEvent) -> dict[str, Any]:
    """What one line shows: the case only to those who may read it, ID numbers masked."""
    case = event.case
    visible = case is not None and can_view_case(db(), current_scope(), case)
    payload = event.payload
    return {'event': event, 'case': case if visible else None, 'client': event.client.name,
            'id_number': mask_id_number(payload.get('id_number')) if payload.get('id_number') else '',
            'what': payload.get('alarm_type') or payload.get('source') or '',
            'when': payload.get('occurred_at') or payload.get('applied_on') or '',
            'where': payload.get('location') or payload.get('hospital') or ''}
