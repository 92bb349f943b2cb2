"""Dead jobs: supervisors see those of their subtree and retry or cancel them with a reason (audited)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import runtime
from engine.clock import now
from engine.models.audit import AuditEvent
from engine.models.jobs import Job
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.fixtures.web import csrf_token


@pytest.fixture
def chief(org: Org, create_member: Callable[..., User]) -> User:
    return create_member('chief', 'supervisor', org.county)


@pytest.fixture
def dead_job(session: Session, org: Org, people: dict[str, User], chief: User,
             deploy_file: Callable[[str], object]) -> Job:
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    case, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=people['staff'], org_unit=org.township)
    instance = case.instances[0]
    job = Job(kind='timer', key=f'timer:{instance.id}:test', instance_id=instance.id, due_dt=now(), status='dead',
              attempts=5, payload={}, last_error='测试错误', created_dt=now())
    session.add(job)
    session.commit()
    return job


def test_supervisor_sees_and_retries_dead_job(client: FlaskClient, login: Callable[[str], FlaskClient],
                                              session: Session, dead_job: Job) -> None:
    login('chief')
    page = client.get('/supervision/jobs').get_data(as_text=True)
    assert '测试错误' in page and f'/supervision/jobs/{dead_job.id}/retry' in page
    token = csrf_token(client, '/supervision/jobs')
    refused = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': ''})
    assert refused.status_code == 302
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'dead'
    done = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': '故障已修复'})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'pending'
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'job.retried')).one()
    assert event.note == '故障已修复'


def test_supervisor_cancels_dead_job(client: FlaskClient, login: Callable[[str], FlaskClient], session: Session,
                                     dead_job: Job) -> None:
    login('chief')
    token = csrf_token(client, '/supervision/jobs')
    client.post(f'/supervision/jobs/{dead_job.id}/cancel', data={'csrf_token': token, 'reason': '不再需要'})
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'cancelled'


def test_staff_cannot_see_dead_jobs(client: FlaskClient, login: Callable[[str], FlaskClient], dead_job: Job) -> None:
    login('staff')
    assert client.get('/supervision/jobs').status_code == 403
    token = csrf_token(client, '/tasks')
    response = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': 'x'})
    assert response.status_code in (302, 403)


def test_supervisor_of_another_county_neither_sees_nor_retries(
        client: FlaskClient, login: Callable[[str], FlaskClient], create_member: Callable[..., User], org: Org,
        session: Session, dead_job: Job) -> None:
    create_member('other_chief', 'supervisor', org.other_county)
    login('other_chief')
    assert '测试错误' not in client.get('/supervision/jobs').get_data(as_text=True)
    token = csrf_token(client, '/supervision/jobs')
    response = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': '试试'})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'dead'
