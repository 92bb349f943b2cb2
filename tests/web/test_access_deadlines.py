"""Every endpoint added for deadlines, notifications, the calendar and documents × anonymous, outsider, owner,
supervisor and admin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.calendar import add_override
from engine.clock import now
from engine.models.notifications import Notification
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.engine.deadline_support import task_jobs
from tests.fixtures.directory import Org
from tests.web.conftest import csrf_token
from workflows.shared.documents import generate_document

Clients = Callable[[str], FlaskClient]
DATA = {'day': '2025-12-01', 'kind': 'rest', 'note': '测试', 'until': '2025-10-13T09:00', 'reason': '测试'}

ENDPOINTS = [
    'GET /notifications', 'POST /notifications/read-all', 'POST /notifications/{note}/read',
    'GET /admin/calendar', 'POST /admin/calendar', 'POST /admin/calendar/overrides/{override}/remove',
    'GET /cases/{case}/documents/{document}',
    'POST /tasks/{task}/reminders/{job}/snooze', 'POST /tasks/{task}/reminders/{job}/cancel',
]
# status per endpoint, in the order above; 302 = done (or, for anonymous, sent to log in)
EXPECTED = {
    'anonymous': [302, 302, 302, 302, 302, 302, 302, 302, 302],
    'outsider': [200, 302, 404, 403, 403, 403, 404, 404, 404],
    'staff': [200, 302, 302, 403, 403, 403, 200, 403, 403],    # owns the notification, works on the case
    'chief': [200, 302, 404, 403, 403, 403, 200, 302, 302],    # supervises the task's county
    'admin': [200, 302, 404, 200, 302, 302, 404, 404, 404],    # administration is not case work
}


@pytest.fixture
def targets(session: Session, org: Org, people: dict[str, User], assess: HumanTask,
            create_member: Callable[..., User]) -> dict[str, int]:
    admin = create_member('admin', 'admin', org.province)
    note = Notification(user_id=people['staff'].id, kind='reminder', title='提醒', body='', case_id=assess.case_id,
                        human_task_id=assess.id, created_dt=now())
    session.add(note)
    override = add_override(session, date(2025, 10, 20), False, org_unit=None, note='停工', actor=admin)
    document = generate_document(session, assess.case, None, 'shared/case_summary', '案件情况摘要', {},
                                 actor=people['staff'])
    session.commit()
    job = next(job for job in task_jobs(session, assess.id) if job.kind == 'reminder')
    return {'note': note.id, 'override': override.id, 'case': assess.case_id, 'document': document.id,
            'task': assess.id, 'job': job.id}


@pytest.mark.parametrize('who', list(EXPECTED))
@pytest.mark.parametrize('index', range(len(ENDPOINTS)), ids=ENDPOINTS)
def test_access(client: FlaskClient, client_for: Clients, targets: dict[str, int], who: str, index: int) -> None:
    method, path = ENDPOINTS[index].split()
    path = path.format(**targets)
    user = client if who == 'anonymous' else client_for(who)
    if method == 'GET':
        response = user.get(path)
    else:
        token = csrf_token(user, '/login' if who == 'anonymous' else '/notifications')
        response = user.post(path, data={**DATA, 'csrf_token': token})
    assert response.status_code == EXPECTED[who][index]
    if who == 'anonymous':
        assert '/login' in response.headers['Location']
