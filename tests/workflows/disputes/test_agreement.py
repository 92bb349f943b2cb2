"""From the 调解协议书 to closure: the agreement form, 司法确认 and its 30-day window, 回访 and performance,
feedback to the health bureau, and the case subsidy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.clock import LOCAL_ZONE
from engine.clocks import case_clock
from engine.errors import ValidationFailed
from engine.models.cases import Case
from engine.models.notifications import Notification
from tests.workflows.disputes.conftest import Driver, agreement_data, session_data, valid_id

FOLLOWUP = {'visit_on': '2025-10-15', 'visit_method': '电话回访', 'performance_status': 'performed',
            'paid_amount': '18000.00', 'satisfaction': '满意'}


def to_agreement(driver: Driver, **start: Any) -> Case:
    case = driver.start(**start)
    driver.accept(case)
    driver.complete(case, 'session_county', session_data('agreement', on='2025-09-26'))
    assert driver.open_ids(case) == ['draft_agreement']
    return case


def signed(driver: Driver, **agreement: Any) -> Case:
    case = to_agreement(driver)
    driver.complete(case, 'draft_agreement', agreement_data(signed_on='2025-09-26', **agreement))
    return case


@pytest.mark.parametrize(('change', 'field'), [
    ({'parties': [{'role': '患方', 'name': '', 'id_number': valid_id('43092219850101002'), 'signed': True},
                  {'role': '医方', 'name': '桃江县某医院', 'signed': True}]}, 'parties.0.name'),
    ({'parties': [{'role': '患方', 'name': '王某某', 'id_number': '430922198501010021', 'signed': True},
                  {'role': '医方', 'name': '桃江县某医院', 'signed': True}]}, 'parties.0.id_number'),
    ({'parties': [{'role': '患方', 'name': '王某某', 'id_number': valid_id('43092219850101002'), 'signed': True},
                  {'role': '医方', 'name': '桃江县某医院', 'signed': False}]}, 'parties.1.signed'),
    ({'parties': [{'role': '患方', 'name': '王某某', 'id_number': valid_id('43092219850101002'), 'signed': True},
                  {'role': '患方', 'name': '王某', 'id_number': valid_id('43092219870101002'), 'signed': True}]},
     'parties'),
    ({'amount_agreed': 18000.5}, 'amount_agreed'),
    ({'amount_agreed': '18000.555'}, 'amount_agreed'),
    ({'insurer_share': '20000.00'}, 'insurer_share'),
    ({'performance_due_on': '2025-09-01'}, 'performance_due_on'),
    ({'signed_on': '2025-09-27'}, 'signed_on'),
    ({'mediator_signed': False}, 'mediator_signed'),
    ({'seal_affixed': False}, 'seal_affixed'),
    ({'performance_method': '以物抵债'}, 'performance_method'),
    ({'unexpected': 'x'}, 'unexpected'),
], ids=['party-name', 'party-id-number', 'unsigned', 'no-hospital', 'float', 'three-places', 'insurer-too-much',
        'due-before-signing', 'signed-in-future', 'mediator-unsigned', 'no-seal', 'method', 'unknown-field'])
def test_agreement_form_refuses_what_would_not_take_effect(driver: Driver, change: dict[str, Any],
                                                           field: str) -> None:
    case = to_agreement(driver)
    with pytest.raises(ValidationFailed) as error:
        driver.complete(case, 'draft_agreement', {**agreement_data(signed_on='2025-09-26'), **change})
    driver.session.rollback()
    assert field in error.value.fields, error.value.fields
    assert driver.open_ids(case) == ['draft_agreement']


def test_agreement_form_takes_typed_yes_and_no(driver: Driver) -> None:
    """The generic page form sends text: 是/否 answer the signature questions."""
    case = to_agreement(driver)
    parties = agreement_data()['parties']
    typed = {**agreement_data(signed_on='2025-09-26'), 'mediator_signed': '是', 'seal_affixed': '是',
             'parties': [{**parties[0], 'signed': '是'}, {**parties[1], 'signed': '否'}]}
    with pytest.raises(ValidationFailed) as error:
        driver.complete(case, 'draft_agreement', typed)
    driver.session.rollback()
    assert list(error.value.fields) == ['parties.1.signed']
    assert '人民调解法 §29' in error.value.fields['parties.1.signed'][0]
    typed['parties'][1]['signed'] = '已签署'
    driver.complete(case, 'draft_agreement', typed)
    assert driver.open_ids(case) == ['confirmation']


def test_signed_agreement_stops_the_clock_and_is_issued(driver: Driver) -> None:
    case = signed(driver)
    assert sorted(driver.open_ids(case)) == ['confirmation']
    fresh = driver.fresh(case)
    assert fresh.agreed_amount == Decimal('18000.00') and isinstance(fresh.agreed_amount, Decimal)
    clock = case_clock(driver.session, case.id, 'mediation')
    assert clock is not None and clock.status == 'stopped'
    agreement = driver.documents(case)[-1]
    assert (agreement.kind, agreement.audience) == ('agreement', 'parties')
    assert '壹万捌仟元整' in agreement.body_html and '其中由医疗责任保险承保机构赔付 10000.00 元' in agreement.body_html
    assert '医方自行支付 8000.00 元' in agreement.body_html
    data = driver.data(case)
    assert data['hospital_share'] == '8000.00' and data['parties'][1]['credit_code'] == '12430922MB1234567X'


def test_confirmation_window_runs_thirty_days_over_spring_festival(driver: Driver) -> None:
    driver.at('2026-01-05 09:00')
    case = driver.start(applied_on='2026-01-05')
    driver.accept(case, accepted_on='2026-01-05')
    driver.at('2026-01-20 10:00')
    driver.complete(case, 'session_county', session_data('agreement', on='2026-01-20'))
    driver.complete(case, 'draft_agreement', agreement_data(signed_on='2026-01-20', performance_due_on='2026-03-31'))
    task = driver.task(case, 'confirmation')
    assert task.due_dt is not None
    # 2026-01-20 + 30 days is 2026-02-19, inside the Spring Festival holiday: the window ends 2026-02-24.
    assert task.due_dt.astimezone(LOCAL_ZONE).strftime('%Y-%m-%d %H:%M') == '2026-02-24 23:59'
    assert driver.data(case)['confirmation_deadline_on'] == '2026-02-24'
    mediator = driver.user('mediator')

    def reminders() -> list[str]:
        rows = driver.session.scalars(sa.select(Notification).where(Notification.user_id == mediator.id,
                                                                    Notification.title.contains('司法确认提醒')))
        return [n.title.split('调解协议生效')[-1] for n in rows]

    driver.at('2026-01-27 08:59')
    assert reminders() == []
    driver.at('2026-01-27 09:01')
    assert reminders() == ['第 7 日']
    driver.at('2026-02-09 09:01')
    driver.at('2026-02-16 09:01')
    assert reminders() == ['第 7 日', '第 20 日', '第 27 日']
    assert driver.open_ids(case) == ['confirmation']
    driver.at('2026-02-24 23:00')
    assert driver.open_ids(case) == ['confirmation']
    driver.at('2026-02-25 00:00:01')
    assert 'confirmation' not in driver.open_ids(case)
    assert driver.audit(case, 'dispute.confirmation_lapsed')


def test_confirmation_reminders_stop_once_applied(driver: Driver) -> None:
    case = signed(driver)
    driver.complete(case, 'confirmation', {'confirmation_decision': 'applied', 'confirmation_applied_on': '2025-09-26',
                                           'court_name': '桃江县人民法院'})
    assert driver.open_ids(case) == ['court_ruling']
    driver.at('2025-10-03 09:30')
    assert driver.session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
        Notification.title.contains('司法确认提醒'))) == 0


@pytest.mark.parametrize(('ruling', 'after'), [('confirmed', []), ('rejected', ['after_rejection'])])
def test_court_ruling_is_recorded(driver: Driver, ruling: str, after: list[str]) -> None:
    case = signed(driver)
    driver.complete(case, 'confirmation', {'confirmation_decision': 'applied', 'confirmation_applied_on': '2025-09-26',
                                           'court_name': '桃江县人民法院'})
    task = driver.task(case, 'court_ruling')
    assert task.due_dt is not None and task.due_dt.astimezone(LOCAL_ZONE).date().isoformat() == '2025-10-27'
    driver.complete(case, 'court_ruling', {'court_case_number': '（2025）湘0922民特12号',
                                           'court_ruling_result': ruling, 'ruling_on': '2025-09-26'})
    assert driver.open_ids(case) == after
    [event] = driver.audit(case, 'dispute.confirmation_ruled')
    assert event.after['court_ruling_result'] == ruling and event.after['court_case_number'].endswith('12号')
    if after:
        driver.complete(case, 'after_rejection', {'rejection_followup': 'lawsuit'})
        assert driver.open_ids(case) == []


def test_waived_confirmation_and_performed_agreement_close_plainly(driver: Driver) -> None:
    case = signed(driver)
    driver.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    assert driver.open_ids(case) == []
    driver.at('2025-10-15 08:59')
    assert driver.open_ids(case) == []
    driver.at('2025-10-15 09:01')
    assert driver.open_ids(case) == ['followup']
    driver.complete(case, 'followup', FOLLOWUP)
    assert driver.document_kinds(case)[-1] == 'followup_record'
    assert driver.open_ids(case) == ['analyse_causes']
    driver.complete(case, 'analyse_causes', {'hospital_problems': False})
    assert driver.open_ids(case) == ['close_review']
    assert driver.data(case)['subsidy_tier'] == '一般'
    driver.complete(case, 'close_review', {'review_opinion': '卷宗齐全，同意结案。'})
    closed = driver.fresh(case)
    assert (closed.status, closed.outcome, closed.subsidy_tier) == ('closed', '调解成功', '一般')
    [event] = driver.audit(case, 'dispute.closed')
    assert event.after['subsidy_amount'] == '300.00'
    assert 'rectification_letter' not in driver.document_kinds(case)


@pytest.mark.parametrize('status', ['partial', 'not_performed'])
def test_unperformed_agreement_is_followed_up(driver: Driver, status: str) -> None:
    case = signed(driver)
    driver.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    driver.at('2025-10-15 09:01')
    driver.complete(case, 'followup', {**FOLLOWUP, 'performance_status': status, 'paid_amount': '0.00',
                                       'satisfaction': '不满意'})
    assert driver.open_ids(case) == ['urge_performance']
    driver.complete(case, 'urge_performance', {'urge_result': 'performed', 'urge_note': '经督促，医院已付清。'})
    assert driver.open_ids(case) == ['analyse_causes']


def test_hospital_problems_go_to_the_health_bureau(driver: Driver) -> None:
    case = signed(driver)
    driver.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    driver.at('2025-10-15 09:01')
    driver.complete(case, 'followup', FOLLOWUP)
    driver.complete(case, 'analyse_causes', {'hospital_problems': True, 'problems_found': '用药后观察记录不完整。',
                                             'rectification_suggestions': '完善过敏反应观察制度。'})
    assert driver.open_ids(case) == ['health_rectification']
    assert [task.bpmn_id for task in driver.queue('health')] == ['health_rectification']
    assert 'health_rectification' not in [task.bpmn_id for task in driver.queue('mediator')]
    letter = driver.documents(case)[-1]
    assert letter.kind == 'rectification_letter' and '桃江县卫生健康局' in letter.body_html
    assert '完善过敏反应观察制度' in letter.body_html
    driver.complete(case, 'health_rectification', {'rectification_measures': '组织全院培训。',
                                                   'rectification_status': 'done',
                                                   'rectification_reply_on': '2025-10-20'})
    assert driver.open_ids(case) == ['close_review']


def test_reviewer_may_adjust_the_subsidy_tier(driver: Driver) -> None:
    case = signed(driver)
    driver.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    driver.at('2025-10-15 09:01')
    driver.complete(case, 'followup', FOLLOWUP)
    driver.complete(case, 'analyse_causes', {'hospital_problems': False})
    assert [task.bpmn_id for task in driver.queue('chief')] == ['close_review']
    driver.complete(case, 'close_review', {'review_opinion': '案情复杂，核定为疑难。', 'confirmed_tier': '疑难'})
    assert driver.fresh(case).subsidy_tier == '疑难'
    [event] = driver.audit(case, 'dispute.closed')
    assert event.after['subsidy_amount'] == '800.00'
