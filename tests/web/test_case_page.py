"""The case page: summary and ID-number masking, every instance with its open tasks, the paged timeline, the
一案一码 QR code, and the requests that may be started on the case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy.orm import Session

from engine import runtime
from engine.clock import FrozenClock
from engine.definitions import deploy
from engine.models.cases import Case, CaseAccessGrant
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import page, post_form, text_of
from web.cases import util

Clients = Callable[[str], FlaskClient]
ROOT = Path(__file__).resolve().parents[2]
MALE_ID = '431381198503120015'
RECEPTION = {
    'person_name': '李某', 'id_number': MALE_ID, 'correction_type': '缓刑', 'decision_body': '桃江县人民法院',
    'judgment_number': '（2025）湘0922刑初88号', 'crime': '危险驾驶罪', 'sentence': '拘役四个月，缓刑六个月',
    'judgment_effective_on': '2025-09-25', 'term_start': '2025-09-25', 'term_end': '2026-09-24',
    'documents_received_on': '2025-09-26', 'residence_address': '桃花江镇'}
LEAVE = {'leave_from': '2025-10-10', 'leave_to': '2025-10-13', 'destination': '长沙市岳麓区',
         'reason': '陪同家人就医', 'applied_on': '2025-09-30'}
REQUEST_KEYS = {'corrections_leave', 'corrections_residence_change', 'corrections_alarm', 'corrections_sanction',
                'corrections_release', 'corrections_report', 'corrections_monitoring'}


@pytest.fixture
def corrections_case(session: Session, org: Org, people: dict[str, User], clock: FrozenClock) -> Case:
    """Every corrections diagram deployed; a 缓刑 case received by 桃江县 (at the county, waiting at ``receipt``)."""
    for path in sorted((ROOT / 'bpmn' / 'corrections').glob('*.bpmn')):
        deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
    session.commit()
    case, _ = runtime.start_case(session, 'corrections_reception', RECEPTION, actor=people['officer'],
                                 org_unit=org.county)
    session.commit()
    return case


def _grant(session: Session, case: Case, path: str) -> None:
    """The unit at ``path`` keeps read access to ``case`` (as after a residence change)."""
    session.add(CaseAccessGrant(case_id=case.id, org_path=path, reason='变更执行地', granted_dt=case.created_dt))
    session.commit()


def _summary(doc: Any) -> dict[str, str]:
    return {text_of(div.xpath('dt')[0]): text_of(div.xpath('dd')[0])
            for div in doc.xpath('//section[@aria-labelledby="case-data-title"]/dl[1]/div')}


# -- summary ------------------------------------------------------------------------------------------------

def test_summary_shows_number_person_status_unit_and_dates(client_for: Clients,
                                                           corrections_case: Case) -> None:
    rows = _summary(page(client_for('officer').get(f'/cases/{corrections_case.id}')))
    assert rows['案件编号'] == corrections_case.number and rows['当事人'] == '李某'
    assert rows['状态'] == '办理中' and rows['办理机构'] == '桃江县司法局'
    assert rows['立案时间'] == '2025年9月26日 09:00' and rows['法定期限起算日'] == '2025年9月25日'
    assert rows['流程'] == '社区矫正交付接收与执行'


def test_full_id_number_only_on_request_by_the_case_units_not_through_a_transfer_grant(
        client_for: Clients, session: Session, org: Org, corrections_case: Case) -> None:
    # Masked on the page as first sent, even for the case's own officer; the full number is one audited POST away.
    officer = client_for('officer')
    doc = page(officer.get(f'/cases/{corrections_case.id}'))
    assert _summary(doc)['公民身份号码'] == '431381********0015'
    assert doc.xpath(f'//form[@action="/cases/{corrections_case.id}/sensitive"]')
    path = f'/cases/{corrections_case.id}'
    revealed = post_form(officer, f'{path}/sensitive', {}, token_from=path)
    assert MALE_ID in revealed.get_data(as_text=True)
    _grant(session, corrections_case, org.other_township.path)
    outsider = client_for('outsider')
    body = outsider.get(f'/cases/{corrections_case.id}').get_data(as_text=True)
    assert '431381********0015' in body and MALE_ID not in body and '/sensitive' not in body


def test_risk_colour_is_shown_as_a_badge(client_for: Clients, session: Session,
                                         demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    case.risk_colour = 'red'
    session.commit()
    doc = page(client_for('staff').get(f'/cases/{case.id}'))
    assert text_of(doc.xpath('//div[@class="page-head"]//span[contains(@class, "badge-risk-red")]')[0]) == '红色'
    assert _summary(doc)['风险等级'] == '红色'


# -- instances --------------------------------------------------------------------------------------------

def test_every_instance_is_listed_with_its_open_tasks_holders_and_due_dates(
        client_for: Clients, session: Session, corrections_case: Case, people: dict[str, User]) -> None:
    officer = client_for('officer')
    post_form(officer, f'/cases/{corrections_case.id}/requests/corrections_leave', LEAVE,
              token_from=f'/cases/{corrections_case.id}')
    receipt = session.scalars(sa.select(HumanTask).where(HumanTask.bpmn_id == 'receipt')).one()
    receipt.assignee_id = people['officer'].id
    session.commit()
    doc = page(officer.get(f'/cases/{corrections_case.id}'))
    instances = doc.xpath('//section[@id="instances"]//li[@class="instance"]')
    assert len(instances) == 2
    lifecycle, leave = (text_of(li) for li in instances)
    assert lifecycle.startswith('社区矫正交付接收与执行') and 'v1' in lifecycle
    assert '启动 2025年9月26日 09:00' in lifecycle
    assert '接收法律文书并送达回执' in lifecycle and '曾志强' in lifecycle  # held by the officer
    assert '外出审批' in leave and '附属申请' in leave and '待认领' in leave
    assert instances[0].xpath(f'.//a[@href="/tasks/{receipt.id}"]')
    assert instances[0].xpath('.//span[contains(@class, "due")]//time')  # its due date


def test_a_completed_instance_shows_when_it_ended(client_for: Clients, session: Session,
                                                  demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    instance = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)).one()
    instance.status, instance.completed_dt = 'completed', case.created_dt + timedelta(days=2)
    session.commit()
    [row] = page(client_for('staff').get(f'/cases/{case.id}')).xpath('//li[@class="instance"]')
    assert '已完成' in text_of(row) and '结束 ' in text_of(row) and '结束 —' not in text_of(row)


# -- the timeline -----------------------------------------------------------------------------------------

def test_the_whole_timeline_is_paged_with_a_more_link(client_for: Clients, monkeypatch: pytest.MonkeyPatch,
                                                      demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    staff = client_for('staff')
    everything = [text_of(li) for li in page(staff.get(f'/cases/{case.id}')).xpath('//section[@id="history"]//li')]
    assert len(everything) >= 3
    monkeypatch.setattr(util, 'TIMELINE_PAGE', 2)
    seen: list[str] = []
    path: str | None = f'/cases/{case.id}'
    while path:
        doc = page(staff.get(path))
        entries = doc.xpath('//section[@id="history"]//li')
        assert 0 < len(entries) <= 2
        seen += [text_of(li) for li in entries]
        more = doc.xpath('//section[@id="history"]//a[@rel="next"]/@href')
        path = more[0] if more else None
        if path:
            assert 'history_after=' in path and path.endswith('#history')
    assert seen == everything
    assert doc.xpath('//section[@id="history"]//a[text()="从第一条看起"]')


def test_a_bad_timeline_cursor_is_a_400(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    assert client_for('staff').get(f'/cases/{case.id}?history_after=x').status_code == 400


# -- 一案一码 ----------------------------------------------------------------------------------------------

def test_qr_code_is_an_svg_of_the_public_progress_page(client_for: Clients,
                                                       demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    staff = client_for('staff')
    response = staff.get(f'/cases/{case.id}/qr.svg')
    assert response.status_code == 200 and response.mimetype == 'image/svg+xml'
    assert 'private' in response.headers['Cache-Control']
    root = etree.fromstring(response.data)
    assert root.tag == '{http://www.w3.org/2000/svg}svg' and root.get('width') == root.get('height')
    assert response.data == util.qr_svg(f'http://localhost/c/{case.public_code}')
    doc = page(staff.get(f'/cases/{case.id}'))
    [panel] = doc.xpath('//section[contains(@class, "qr-panel")]')
    assert panel.xpath('.//img/@src') == [f'/cases/{case.id}/qr.svg'] and panel.xpath('.//img/@alt')[0]
    assert case.public_code in text_of(panel) and f'http://localhost/c/{case.public_code}' in text_of(panel)


def test_qr_code_uses_the_public_address_when_configured(app: Flask, client_for: Clients,
                                                         demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    app.config['PUBLIC_BASE_URL'] = 'https://sfj.example.gov.cn/'
    staff = client_for('staff')
    assert staff.get(f'/cases/{case.id}/qr.svg').data == util.qr_svg(f'https://sfj.example.gov.cn/c/{case.public_code}')
    assert f'https://sfj.example.gov.cn/c/{case.public_code}' in staff.get(f'/cases/{case.id}').get_data(as_text=True)


def test_qr_code_outside_the_subtree_is_404(client_for: Clients, client: FlaskClient,
                                            demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    assert client_for('outsider').get(f'/cases/{case.id}/qr.svg').status_code == 404
    assert client_for('staff').get('/cases/999/qr.svg').status_code == 404
    assert client.get(f'/cases/{case.id}/qr.svg').status_code == 302  # anonymous: to the login page


# -- requests started on the case -------------------------------------------------------------------------

def _actions(client: FlaskClient, case: Case) -> set[str]:
    hrefs = page(client.get(f'/cases/{case.id}')).xpath('//ul[@class="action-list"]//a/@href')
    prefix = f'/cases/{case.id}/requests/'
    assert all(href.startswith(prefix) for href in hrefs)
    return {href.removeprefix(prefix) for href in hrefs}


def test_requests_are_offered_on_an_open_case_to_its_own_units(client_for: Clients, corrections_case: Case,
                                                               org: Org, create_member: Callable[..., User]) -> None:
    assert _actions(client_for('officer'), corrections_case) == REQUEST_KEYS
    create_member('city_chief', 'supervisor', org.city)
    assert _actions(client_for('city_chief'), corrections_case) == REQUEST_KEYS  # a supervisor above it


def test_no_requests_through_a_transfer_grant(client_for: Clients, session: Session, org: Org,
                                              corrections_case: Case) -> None:
    _grant(session, corrections_case, org.other_township.path)
    outsider = client_for('outsider')
    assert _actions(outsider, corrections_case) == set()
    assert outsider.get(f'/cases/{corrections_case.id}/requests/corrections_leave').status_code == 403


def test_no_requests_on_a_closed_case(client_for: Clients, session: Session, corrections_case: Case,
                                      clock: FrozenClock) -> None:
    corrections_case.close(clock.now())
    session.commit()
    officer = client_for('officer')
    assert _actions(officer, corrections_case) == set()
    assert officer.get(f'/cases/{corrections_case.id}/requests/corrections_leave').status_code == 409


def test_no_corrections_requests_on_another_kind_of_case(client_for: Clients, corrections_case: Case,
                                                         deploy_file: Callable[[str], object], session: Session,
                                                         people: dict[str, User], org: Org) -> None:
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    demo, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=people['staff'], org_unit=org.township)
    session.commit()
    staff = client_for('staff')
    assert _actions(staff, demo) == set()
    assert staff.get(f'/cases/{demo.id}/requests/corrections_leave').status_code == 404
    assert staff.get(f'/cases/{demo.id}/requests/corrections_reception').status_code == 404  # opens cases


def test_start_a_request_from_the_case(client_for: Clients, session: Session, corrections_case: Case) -> None:
    officer = client_for('officer')
    form = page(officer.get(f'/cases/{corrections_case.id}/requests/corrections_leave'))
    assert not form.xpath('//input[@name="case_id"]')  # bound to this case, not asked for
    assert form.xpath('//input[@name="destination"]') and corrections_case.number in text_of(form)
    response = post_form(officer, f'/cases/{corrections_case.id}/requests/corrections_leave', LEAVE,
                         token_from=f'/cases/{corrections_case.id}')
    assert response.status_code == 302
    assert response.headers['Location'] == f'/cases/{corrections_case.id}#instances'
    instances = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == corrections_case.id)
                                .order_by(ProcessInstance.id)).all()
    assert [(i.definition.key, i.is_lifecycle) for i in instances] == [
        ('corrections_reception', True), ('corrections_leave', False)]
    shown = page(officer.get(f'/cases/{corrections_case.id}'))
    flash = text_of(shown.xpath('//div[contains(@class, "alert-success")]')[0])
    assert '已发起“外出审批”' in flash and '办理期限' in flash


def test_an_invalid_request_form_keeps_what_was_typed(client_for: Clients, session: Session,
                                                      corrections_case: Case) -> None:
    officer, path = client_for('officer'), f'/cases/{corrections_case.id}/requests/corrections_leave'
    response = post_form(officer, path, {**LEAVE, 'destination': ''}, token_from=f'/cases/{corrections_case.id}')
    assert response.status_code == 400
    doc = page(response)
    [destination] = doc.xpath('//div[contains(@class, "has-error")][.//input[@name="destination"]]')
    assert '此项为必填项。' in text_of(destination)
    assert doc.xpath('//textarea[@name="reason"]/text()') == [LEAVE['reason']]
    reversed_dates = post_form(officer, path, {**LEAVE, 'leave_to': '2025-10-01'},
                               token_from=f'/cases/{corrections_case.id}')
    assert reversed_dates.status_code == 400
    field = page(reversed_dates).xpath('//div[contains(@class, "has-error")][.//input[@name="leave_to"]]')[0]
    assert '返回日期不能早于外出日期' in text_of(field)
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessInstance)) == 1


# -- access -------------------------------------------------------------------------------------------------

ENDPOINTS = ['/cases/{case}', '/cases/{case}/qr.svg', '/cases/{case}/requests/corrections_leave']
#: who → status of each endpoint: anonymous to the login page; the county's officer 200; staff of a township
#: below it, of another county, and designers (no case work) 404 — the case is at the county
EXPECTED = {None: 302, 'officer': 200, 'staff': 404, 'outsider': 404, 'designer': 404}


@pytest.mark.parametrize('path', ENDPOINTS)
@pytest.mark.parametrize('who', list(EXPECTED))
def test_access_to_the_case_endpoints(client: FlaskClient, client_for: Clients, corrections_case: Case,
                                      path: str, who: str | None) -> None:
    caller = client if who is None else client_for(who)
    assert caller.get(path.format(case=corrections_case.id)).status_code == EXPECTED[who]
