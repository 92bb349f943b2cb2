"""Deploying and listing definitions through the API."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.models.definitions import ProcessDefinition
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


def _count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) or 0


@pytest.fixture
def designer(as_user: Callable[[str | None], Api], people: dict[str, User]) -> Api:
    return as_user('designer')


def test_deploy_creates_a_version_once(designer: Api, session: Session, people: dict[str, User]) -> None:
    first = designer.post('/definitions', {'source': DEMO_SOURCE})
    assert first.status_code == 201, first.get_json()
    assert first.get_json() == {'id': first.get_json()['id'], 'key': 'demo_intake', 'version': 1, 'created': True}
    again = designer.post('/definitions', {'source': DEMO_SOURCE})
    assert again.status_code == 200 and again.get_json() == {**first.get_json(), 'created': False}
    assert _count(session) == 1
    changed = designer.post('/definitions', {'source': DEMO_SOURCE.replace('（演示）', '（演示二）')})
    assert changed.status_code == 201 and changed.get_json()['version'] == 2
    stored = session.scalars(sa.select(ProcessDefinition).order_by(ProcessDefinition.id)).all()
    assert [d.deployed_by_id for d in stored] == [people['designer'].id] * 2


def test_deploy_as_multipart_upload(designer: Api, session: Session) -> None:
    upload = {'file': (io.BytesIO(DEMO_SOURCE.encode('utf-8')), 'demo_intake.bpmn')}
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


def test_list_definitions_newest_first_with_paging(designer: Api, as_user: Callable[[str | None], Api]) -> None:
    for n in range(3):
        assert designer.post('/definitions', {'source': DEMO_SOURCE.replace('（演示）', f'（{n}）')}).status_code == 201
    staff = as_user('staff')  # anyone signed in may read the catalogue
    page = staff.get('/definitions?limit=2').get_json()
    assert [d['version'] for d in page['items']] == [3, 2] and page['next']
    rest = staff.get(f'/definitions?limit=2&cursor={page["next"]}').get_json()
    assert [d['version'] for d in rest['items']] == [1] and rest['next'] is None
    item = page['items'][0]
    assert set(item) == {'id', 'key', 'version', 'kind', 'name', 'checksum', 'deployed_at', 'deployed_by'}
    assert item['kind'] == 'bpmn' and len(item['checksum']) == 64 and item['deployed_by']['username'] == 'designer'
