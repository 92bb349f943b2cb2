"""The diagram data endpoint and the diagram partial on the task and case pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import REGISTER, START, page, text_of

Clients = Callable[[str], FlaskClient]


def _instance_id(session: Session, case: Case) -> int:
    return session.scalars(sa.select(ProcessInstance.id).where(ProcessInstance.case_id == case.id)).one()


def _url(case_id: int, instance_id: int) -> str:
    return f'/cases/{case_id}/instances/{instance_id}/diagram.json'


def test_diagram_data_for_a_reader_of_the_case(client_for: Clients, session: Session,
                                               demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    response = client_for('staff').get(_url(case.id, _instance_id(session, case)))
    assert response.status_code == 200
    assert 'no-store' in response.headers['Cache-Control']
    data = response.get_json()
    assert set(data) == {'xml', 'completed', 'active', 'flows', 'times'}
    assert data['xml'].startswith('<?xml') and 'id="demo_intake"' in data['xml']
    assert data['completed'] == {'start': 1}
    assert data['active'] == ['register']
    assert data['flows'] == ['flow_start_register']
    assert data['times'] == [{'id': 'register', 'label': '不到 1 分钟', 'passes': 1, 'open': True}]


def test_diagram_data_follows_the_case(client_for: Clients, session: Session, people: dict[str, User],
                                       demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    runtime.complete_task(session, task.id, REGISTER, actor=people['staff'],
                          scope=load_scope(session, people['staff']))
    session.commit()
    data = client_for('officer').get(_url(case.id, _instance_id(session, case))).get_json()
    assert data['completed'] == {'start': 1, 'register': 1}
    assert data['active'] == ['review']


@pytest.mark.parametrize(('username', 'status'), [
    (None, 401),
    ('staff', 200),
    ('officer', 200),  # the county above the township
    ('outsider', 404),  # another county's township
    ('designer', 404),  # designing processes grants no case
])
def test_who_may_read_a_diagram(app: object, client_for: Clients, session: Session,
                                demo_case: tuple[Case, HumanTask], username: str | None, status: int) -> None:
    case, _ = demo_case
    client = client_for(username) if username else app.test_client()  # type: ignore[attr-defined]
    response = client.get(_url(case.id, _instance_id(session, case)))
    assert response.status_code == status
    if status != 200:
        body = response.get_json()
        assert set(body) == {'error', 'message', 'fields'} and 'xml' not in body


def test_an_instance_of_another_case_is_not_found(client_for: Clients, session: Session, org: Org,
                                                  people: dict[str, User],
                                                  demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    other, _ = runtime.start_case(session, 'demo_intake', {**START, 'person_name': '李某某'},
                                  actor=people['staff'], org_unit=org.township)
    session.commit()
    staff = client_for('staff')
    assert staff.get(_url(other.id, _instance_id(session, other))).status_code == 200
    mismatched = staff.get(_url(case.id, _instance_id(session, other)))
    assert mismatched.status_code == 404 and mismatched.get_json()['error'] == 'not_found'
    missing = [staff.get(_url(case.id, 999_999)), staff.get(_url(999_999, _instance_id(session, case)))]
    outsider = client_for('outsider').get(_url(case.id, _instance_id(session, case)))
    # Refused, missing and mismatched read the same: nothing tells an outsider which cases exist.
    assert {(r.status_code, r.get_json()['message']) for r in [mismatched, *missing, outsider]} == {
        (404, '流程实例不存在')}


def test_task_page_carries_the_diagram(client_for: Clients, session: Session,
                                       demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    doc = page(client_for('staff').get(f'/tasks/{task.id}'))
    [diagram] = doc.xpath('//div[@data-diagram-url]')
    assert diagram.get('data-diagram-url') == _url(case.id, _instance_id(session, case))
    assert diagram.get('data-diagram-error') == '流程图加载失败，请刷新页面重试。'
    assert '当前步骤： 登记案件情况（待办理）' in text_of(doc.xpath('//figcaption[@class="diagram-current"]')[0])
    assert [text_of(li) for li in doc.xpath('//ul[@class="diagram-legend"]/li')] == ['已完成', '当前', '环节用时']
    times = doc.xpath('//div[contains(@class, "step-times")]//tbody/tr')
    assert [text_of(tr.xpath('th')[0]) for tr in times] == ['登记案件情况'] and '进行中' in text_of(times[0])
    # The CSP allows no inline script: the bundle is a plain deferred script from our own origin.
    assert len(doc.xpath('//script[@src="/static/dist/diagram.js"][@defer]')) == 1
    assert not [s for s in doc.xpath('//script') if not s.get('src')]


def test_case_page_draws_the_lifecycle(client_for: Clients, session: Session,
                                       demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    doc = page(client_for('staff').get(f'/cases/{case.id}'))
    assert doc.xpath('//div[@data-diagram-url]/@data-diagram-url') == [_url(case.id, _instance_id(session, case))]
    assert not doc.xpath('//details[@class="diagram-instance"]')  # one instance: no chooser


def test_diagram_partial_in_english(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    _, task = demo_case
    doc = page(client_for('staff').get(f'/tasks/{task.id}?lang=en'))
    assert text_of(doc.xpath('//h2[@id="diagram-title"]')[0]) == 'Process diagram'
    legend = [text_of(li) for li in doc.xpath('//ul[@class="diagram-legend"]/li')]
    assert legend[:2] == ['Completed', 'Current'] and len(legend) == 3
    assert 'Current steps: 登记案件情况 (to do)' in text_of(doc.xpath('//figcaption')[0])
