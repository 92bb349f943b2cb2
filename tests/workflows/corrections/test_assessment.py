"""调查评估: deadlines, the opinion, the identity branch and the agreed extension."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import ValidationFailed
from engine.models.cases import Document
from tests.workflows.corrections.conftest import MALE_ID, Corrections


def _start(c: Corrections, **overrides: object) -> object:
    data = {'person_name': '赵某', 'id_number': MALE_ID, 'defendant_type': '被告人', 'proposed_correction_type': '缓刑',
            'charge': '盗窃罪', 'residence_address': '冷水江市锡矿山街道', 'commissioning_body': '冷水江市人民法院',
            'commission_number': '冷法委评〔2025〕12号', 'commission_received_on': '2025-09-26', 'expedited': False}
    data.update(overrides)
    return c.start('corrections_assessment', data)


def _register(c: Corrections, case: object) -> None:
    c.complete('register', {'procuratorate_notified_on': '2025-09-26', 'township_code': '431381001',
                            'materials_complete': True}, 'lsj_officer', case)


INVESTIGATION = {'residence_verified': '属实', 'family_situation': '与父母同住', 'conduct': '平时表现良好',
                 'community_opinion': '同意接收', 'risk_level': '低', 'findings': '符合社区矫正条件'}


@pytest.mark.parametrize(('expedited', 'due'), [(False, '2025-10-16'), (True, '2025-10-10')])
def test_due_dates_follow_the_legal_examples(corrections: Corrections, expedited: bool, due: str) -> None:
    c = corrections
    case = _start(c, expedited=expedited)
    assert case.number.startswith('DP-')
    _register(c, case)
    investigate = c.task('investigate', case)
    assert investigate.due_rule['due_on'] == due and investigate.org_path == c.units.xikuangshan.path
    assert c.queue('lsj_staff') == ['investigate']


def test_opinion_issued_and_case_closed(corrections: Corrections) -> None:
    c = corrections
    case = _start(c)
    _register(c, case)
    c.complete('investigate', INVESTIGATION, 'lsj_staff', case)
    c.complete('review', {'opinion': '不适宜', 'opinion_reasons': '居住地不固定', 'review_members': '曾志强、彭建华',
                          'reviewed_on': '2025-10-13'}, 'lsj_officer', case)
    c.complete('deliver', {'delivered_on': '2025-10-14', 'delivery_method': '直接送达', 'procuratorate_copied': True},
               'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and case.outcome == '不适宜'
    document = c.session.scalars(sa.select(Document).where(Document.case_id == case.id)).one()
    assert document.title == '调查评估意见书' and '不适宜社区矫正' in document.body_html


def test_false_identity_is_reported_back(corrections: Corrections) -> None:
    c = corrections
    case = _start(c)
    _register(c, case)
    c.complete('investigate', {**INVESTIGATION, 'residence_verified': '不属实'}, 'lsj_staff', case)
    assert c.names(case) == ['inform_false']
    c.complete('inform_false', {'informed_on': '2025-10-09', 'inform_notes': '查无此人'}, 'lsj_officer', case)
    assert c.case(case).outcome == '身份或居住地不实'


def test_agreed_extension_moves_the_due_dates(corrections: Corrections) -> None:
    c = corrections
    case = _start(c)
    _register(c, case)
    c.advance(days=18, minutes=1)  # 2025-10-14 09:01: two working days before 10-16
    assert c.names(case) == ['investigate', 'negotiate_extension']
    with pytest.raises(ValidationFailed):
        c.complete('negotiate_extension', {'extension_agreed': True, 'extension_reason': '被害人在外地'},
                   'lsj_officer', case)
    c.session.rollback()
    c.complete('negotiate_extension', {'extension_agreed': True, 'extended_due_on': '2025-10-24',
                                       'extension_reason': '被害人在外地，经电话商定'}, 'lsj_officer', case)
    assert c.task('investigate', case).due_rule['due_on'] == '2025-10-24'


def test_extension_not_agreed(corrections: Corrections) -> None:
    c = corrections
    case = _start(c)
    _register(c, case)
    c.advance(days=18, minutes=1)
    c.complete('negotiate_extension', {'extension_agreed': False, 'extension_reason': '可按期完成'},
               'lsj_officer', case)
    assert c.names(case) == ['investigate']
    assert c.task('investigate', case).due_rule['due_on'] == '2025-10-16'
