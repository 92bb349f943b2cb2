"""Starting cases through the start form, the case list and search, the case page."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import runtime
from engine.models.cases import Case
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import DEMO, page, post_form, text_of

Clients = Callable[[str], FlaskClient]
NEW = '/cases/new/demo_intake'


def test_new_case_lists_the_deployed_processes(client_for: Clients, people: dict[str, User],
                                               deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    doc = page(client_for('staff').get('/cases/new'))
    assert '案件登记与审核（演示）' in text_of(doc)
    assert doc.xpath('//a[@href="/cases/new/demo_intake"]')


def test_designers_and_admins_cannot_start_cases(client_for: Clients, people: dict[str, User],
                                                 deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    designer = client_for('designer')
    assert designer.get('/cases/new').status_code == 403
    assert designer.get(NEW).status_code == 403
    assert post_form(designer, NEW, {'person_name': '张三', 'received_on': '2025-09-26'}).status_code == 403


def test_start_form_renders_its_widgets(client_for: Clients, people: dict[str, User],
                                        deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    doc = page(client_for('staff').get(NEW))
    name = doc.xpath('//input[@name="person_name"]')[0]
    assert (name.get('minlength'), name.get('maxlength'), 'required' in name.attrib) == ('2', '30', True)
    assert doc.xpath('//input[@name="received_on"]/@type') == ['date']
    assert doc.xpath('//textarea[@name="summary"]/@maxlength') == ['500']  # longer than 200: a textarea
    assert '桃花江镇司法所' in text_of(doc)  # where the case will be opened


def test_start_a_case_through_the_form(client_for: Clients, session: Session, org: Org,
                                       people: dict[str, User], deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    staff = client_for('staff')
    response = post_form(staff, NEW, {'person_name': '赵某某', 'received_on': '2025-10-09',
                                      'id_number': '', 'summary': '邻里纠纷'}, token_from=NEW)
    case = session.scalars(sa.select(Case)).one()
    assert response.status_code == 302 and response.headers['Location'] == f'/cases/{case.id}'
    assert case.org_unit_id == org.township.id and case.created_by_id == people['staff'].id
    doc = page(staff.get(response.headers['Location']))
    flash = text_of(doc.xpath('//div[contains(@class, "alert-success")]')[0])
    assert case.number in flash and '登记案件情况' in flash and '桃花江镇司法所' in flash
    assert '邻里纠纷' in text_of(doc) and '2025年10月9日' in text_of(doc)


def test_invalid_start_data_creates_nothing(client_for: Clients, session: Session, people: dict[str, User],
                                            deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    response = post_form(client_for('staff'), NEW, {'person_name': '赵', 'received_on': '2025-13-40',
                                                    'id_number': '431381198503120016', 'summary': '摘要'},
                         token_from=NEW)
    assert response.status_code == 400
    doc = page(response)
    assert doc.xpath('//input[@name="person_name"]/@value') == ['赵']
    assert doc.xpath('//textarea[@name="summary"]/text()') == ['摘要']
    assert '长度不能少于 2 个字符。' in text_of(doc.xpath('//div[.//input[@name="person_name"]]')[-1])
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_id_number_check_is_shown_beside_its_field(client_for: Clients, session: Session,
                                                   people: dict[str, User],
                                                   deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    response = post_form(client_for('staff'), NEW, {'person_name': '赵某某', 'received_on': '2025-10-09',
                                                    'id_number': '431381198503120016'}, token_from=NEW)
    assert response.status_code == 400
    field = page(response).xpath('//div[contains(@class, "field ")][.//input[@name="id_number"]]')[0]
    assert '公民身份号码校验位不正确。' in text_of(field)
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def _start(session: Session, user: User, unit: object, name: str, id_number: str | None = None) -> Case:
    data = {'person_name': name, 'received_on': '2025-09-26'}
    if id_number:
        data['id_number'] = id_number
    case, _ = runtime.start_case(session, 'demo_intake', data, actor=user, org_unit=unit)
    session.commit()
    return case


def test_case_list_shows_only_the_subtree_newest_first(client_for: Clients, session: Session, org: Org,
                                                       people: dict[str, User],
                                                       deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    first = _start(session, people['staff'], org.township, '谢某某')
    second = _start(session, people['staff'], org.township, '李某某')
    _start(session, people['outsider'], org.other_township, '黄某某')
    numbers = [text_of(td) for td in page(client_for('staff').get('/cases')).xpath('//tbody/tr/td[1]')]
    assert numbers == [second.number, first.number]


def test_case_search_by_name_prefix_number_and_exact_id(client_for: Clients, session: Session, org: Org,
                                                        people: dict[str, User],
                                                        deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    xie = _start(session, people['staff'], org.township, '谢某某', '431381198503120015')
    li = _start(session, people['staff'], org.township, '李某某')
    _start(session, people['outsider'], org.other_township, '谢某')
    staff = client_for('staff')

    def search(text: str) -> list[str]:
        response = post_form(staff, '/cases', {'q': text}, token_from='/cases')
        assert response.status_code == 200
        return [text_of(td) for td in page(response).xpath('//tbody/tr/td[1]')]

    assert search('谢') == [xie.number]
    assert search('431381198503120015') == [xie.number]
    assert search('4313811985') == []  # ID numbers match exactly, never by prefix
    assert search(li.number) == [li.number]
    assert search('某') == []


def test_case_page_shows_data_tasks_instances_and_history(client_for: Clients, session: Session, org: Org,
                                                          people: dict[str, User],
                                                          demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    doc = page(client_for('staff').get(f'/cases/{case.id}'))
    body = text_of(doc)
    rows = {text_of(div.xpath('dt')[0]): text_of(div.xpath('dd')[0]) for div in doc.xpath('//dl[@class="summary"]/div')}
    assert rows['当事人姓名'] == '谢某某' and rows['收案日期'] == '2025年9月26日'
    # masked even for the case's own unit: the whole number only through 查看完整信息 (tests/web/test_sensitive.py)
    assert rows['公民身份号码'] == '431381********0015'
    assert doc.xpath(f'//a[@href="/tasks/{task.id}"]')
    assert '案件登记与审核（演示）' in body and '办理中' in body
    timeline = text_of(doc.xpath('//section[@id="history"]//ol[@class="timeline"]')[0])
    assert '立案' in timeline and '生成任务' in timeline


def test_cases_outside_the_subtree_are_404(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    assert client_for('outsider').get(f'/cases/{case.id}').status_code == 404
    assert client_for('staff').get('/cases/999').status_code == 404


def test_case_page_in_english_uses_iso_dates(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    body = text_of(page(client_for('staff').get(f'/cases/{case.id}?lang=en')))
    assert '2025-09-26' in body and 'History' in body and '2025年' not in body
