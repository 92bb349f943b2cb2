"""Deploying and listing definitions through the API."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.models.audit import AuditEvent
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import AcceptedWarning
from engine.models.users import User
from tests.api.conftest import DEMO, Api, assert_error

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_SOURCE = (ROOT / DEMO).read_text(encoding='utf-8')

XXE = """<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&xxe;" isExecutable="true"><bpmn:startEvent id="s" /></bpmn:process>
</bpmn:definitions>"""

NOT_EXECUTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="sketch" name="草图" isExecutable="false">
    <bpmn:startEvent id="s"><bpmn:outgoing>f</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="e"><bpmn:incoming>f</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"""


# The demo's review loops back into its first task: bpmnlint's fake-join, a warning.
FAKE_JOIN = {'rule': 'fake-join', 'severity': 'warning', 'element_id': 'register', 'element_name': '登记案件情况'}
# The same diagram without its first task's deadline: an error no one may accept.
NO_DEADLINE = DEMO_SOURCE.replace('<camunda:property name="deadline" value="365 calendar_days" />', '', 1)


def _count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) or 0


def _accept(body: dict[str, object]) -> dict[str, object]:
    return {**body, 'accept_warnings': True}


def _finding(body: dict[str, Any], severity: str, rule: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in body[f'{severity}s'] if f['rule'] == rule]
    assert len(found) == 1, body
    return found[0]


@pytest.fixture
def designer(as_user: Callable[[str | None], Api], people: dict[str, User]) -> Api:
    return as_user('designer')


def test_deploy_creates_a_version_once(designer: Api, session: Session, people: dict[str, User]) -> None:
    first = designer.post('/definitions', _accept({'source': DEMO_SOURCE}))
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body == {'id': body['id'], 'key': 'demo_intake', 'version': 1, 'created': True,
                    'accepted_warnings': body['accepted_warnings']}
    # Unchanged: nothing is stored, so there is nothing to accept either.
    again = designer.post('/definitions', {'source': DEMO_SOURCE})
    assert again.status_code == 200 and again.get_json() == {**body, 'created': False, 'accepted_warnings': []}
    assert _count(session) == 1
    changed = designer.post('/definitions', _accept({'source': DEMO_SOURCE.replace('（演示）', '（演示二）')}))
    assert changed.status_code == 201 and changed.get_json()['version'] == 2
    stored = session.scalars(sa.select(ProcessDefinition).order_by(ProcessDefinition.id)).all()
    assert [d.deployed_by_id for d in stored] == [people['designer'].id] * 2


def test_deploy_as_multipart_upload(designer: Api, session: Session) -> None:
    upload = {'file': (io.BytesIO(DEMO_SOURCE.encode('utf-8')), 'demo_intake.bpmn')}
    refused = designer.post('/definitions', data=upload, content_type='multipart/form-data')
    assert _finding(assert_error(refused, 409, 'warnings_not_accepted')['report'], 'warning', 'fake-join')
    upload = {'file': (io.BytesIO(DEMO_SOURCE.encode('utf-8')), 'demo_intake.bpmn'), 'accept_warnings': 'true'}
    response = designer.post('/definitions', data=upload, content_type='multipart/form-data')
    assert response.status_code == 201 and response.get_json()['key'] == 'demo_intake'
    empty = designer.post('/definitions', data={'other': 'x'}, content_type='multipart/form-data')
    assert list(assert_error(empty, 400, 'invalid')['fields']) == ['file']
    assert _count(session) == 1


@pytest.mark.parametrize(('source', 'fragment'), [
    ('this is not xml', 'XML'),
    ('', '为空'),
    (XXE, 'DOCTYPE'),
    (NOT_EXECUTABLE, 'isExecutable'),
    ('<root/>', '根元素'),
])
def test_rejected_sources_return_problems_and_store_nothing(designer: Api, session: Session, source: str,
                                                            fragment: str) -> None:
    body = assert_error(designer.post('/definitions', {'source': source}), 400, 'invalid_definition')
    assert body['fields'] == {}
    assert body['problems'] and all(set(p) == {'element', 'message'} for p in body['problems'])
    assert any(fragment in p['message'] for p in body['problems']), body['problems']
    assert 'root:' not in str(body)  # no entity was ever expanded
    assert _count(session) == 0


def test_rejected_upload_names_the_element(designer: Api, session: Session) -> None:
    broken = DEMO_SOURCE.replace('<bpmn:userTask id="review"', '<bpmn:serviceTask id="extra" />'
                                 '<bpmn:userTask id="review"')
    body = assert_error(designer.post('/definitions', {'source': broken}), 400, 'invalid_definition')
    assert any(p['element'] for p in body['problems'])
    assert _count(session) == 0


@pytest.mark.parametrize('username', ['staff', 'officer', 'chief'])
def test_only_designers_deploy(as_user: Callable[[str | None], Api], people: dict[str, User], session: Session,
                               username: str) -> None:
    assert_error(as_user(username).post('/definitions', {'source': DEMO_SOURCE}), 403, 'forbidden')
    assert _count(session) == 0


def test_deploy_body_is_validated(designer: Api) -> None:
    assert_error(designer.post('/definitions', {}), 400, 'invalid')
    assert_error(designer.post('/definitions', {'source': 1}), 400, 'invalid')
    assert_error(designer.post('/definitions', {'source': DEMO_SOURCE, 'key': 'x'}), 400, 'invalid')
    body = assert_error(designer.post('/definitions', {'source': DEMO_SOURCE, 'accept_warnings': 'maybe'}), 400,
                        'invalid')
    assert list(body['fields']) == ['accept_warnings']


def test_list_definitions_newest_first_with_paging(designer: Api, as_user: Callable[[str | None], Api]) -> None:
    for n in range(3):
        source = DEMO_SOURCE.replace('（演示）', f'（{n}）')
        assert designer.post('/definitions', _accept({'source': source})).status_code == 201
    staff = as_user('staff')  # anyone signed in may read the catalogue
    page = staff.get('/definitions?limit=2').get_json()
    assert [d['version'] for d in page['items']] == [3, 2] and page['next']
    rest = staff.get(f'/definitions?limit=2&cursor={page["next"]}').get_json()
    assert [d['version'] for d in rest['items']] == [1] and rest['next'] is None
    item = page['items'][0]
    assert set(item) == {'id', 'key', 'version', 'kind', 'name', 'checksum', 'deployed_at', 'deployed_by'}
    assert item['kind'] == 'bpmn' and len(item['checksum']) == 64 and item['deployed_by']['username'] == 'designer'


# -- validation reports -----------------------------------------------------------------------------------

def test_unaccepted_warnings_are_409_with_the_report_and_store_nothing(designer: Api, session: Session) -> None:
    body = assert_error(designer.post('/definitions', {'source': DEMO_SOURCE}), 409, 'warnings_not_accepted')
    report = body['report']
    assert report['valid'] is True and report['errors'] == [] and report['key'] == 'demo_intake'
    finding = _finding(report, 'warning', 'fake-join')
    assert finding.items() >= FAKE_JOIN.items() and '登记案件情况' in finding['message']
    assert _count(session) == 0


def test_accepted_warnings_are_returned_kept_with_the_version_and_audited(designer: Api, session: Session,
                                                                         people: dict[str, User]) -> None:
    response = designer.post('/definitions', _accept({'source': DEMO_SOURCE}))
    assert response.status_code == 201, response.get_json()
    accepted = response.get_json()['accepted_warnings']
    assert _finding({'warnings': accepted}, 'warning', 'fake-join').items() >= FAKE_JOIN.items()
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'definition.deployed')).one()
    assert event.actor_id == people['designer'].id
    assert event.after is not None and event.after['accepted_warnings'] == accepted
    kept = session.scalars(sa.select(AcceptedWarning).order_by(AcceptedWarning.id)).all()
    assert [(w.definition_id, w.rule, w.element_id, w.accepted_by_id) for w in kept] == [
        (response.get_json()['id'], f['rule'], f['element_id'], people['designer'].id) for f in accepted]


def test_errors_cannot_be_accepted(designer: Api, session: Session) -> None:
    body = assert_error(designer.post('/definitions', _accept({'source': NO_DEADLINE})), 400, 'invalid_definition')
    error = _finding(body['report'], 'error', 'user-task-deadline')
    assert error['element_id'] == 'register' and error['element_name'] == '登记案件情况'
    # The error list as clients read it before reports existed.
    assert {'element': 'register', 'message': error['message']} in body['problems']
    assert all(set(p) == {'element', 'message'} for p in body['problems'])
    assert body['report']['valid'] is False and body['report']['warnings']
    assert _count(session) == 0


def _events(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0


def test_validate_reports_without_storing(designer: Api, session: Session) -> None:
    events = _events(session)
    response = designer.post('/definitions/validate', {'source': DEMO_SOURCE})
    assert response.status_code == 200
    report = response.get_json()
    assert set(report) == {'key', 'kind', 'name', 'valid', 'errors', 'warnings'}
    assert report['valid'] is True and report['kind'] == 'bpmn' and report['name'] == '案件登记与审核（演示）'
    assert _finding(report, 'warning', 'fake-join').items() >= FAKE_JOIN.items()
    broken = designer.post('/definitions/validate', {'source': NO_DEADLINE}).get_json()
    assert broken['valid'] is False and _finding(broken, 'error', 'user-task-deadline')['element_id'] == 'register'
    assert _count(session) == 0
    assert _events(session) == events


@pytest.mark.parametrize(('source', 'rule'), [('this is not xml', 'parse'), ('', 'parse'), (XXE, 'parse'),
                                              (NOT_EXECUTABLE, 'executable-process')])
def test_validate_answers_bad_sources_with_a_report(designer: Api, source: str, rule: str) -> None:
    response = designer.post('/definitions/validate', {'source': source})
    assert response.status_code == 200
    report = response.get_json()
    assert report['valid'] is False and rule in {f['rule'] for f in report['errors']}
    assert 'root:' not in str(report)


def test_validate_takes_an_upload_and_checks_its_body(designer: Api) -> None:
    upload = {'file': (io.BytesIO(DEMO_SOURCE.encode('utf-8')), 'demo_intake.bpmn')}
    response = designer.post('/definitions/validate', data=upload, content_type='multipart/form-data')
    assert response.status_code == 200 and response.get_json()['key'] == 'demo_intake'
    assert_error(designer.post('/definitions/validate', {}), 400, 'invalid')
    # Validation takes no accept_warnings: there is nothing to accept.
    assert_error(designer.post('/definitions/validate', _accept({'source': DEMO_SOURCE})), 400, 'invalid')
