"""Importing open medical disputes (``disputes``): columns, stages and the steps they skip.

Importable stages of ``dispute_mediation``:

* ``受理审查`` (``review``): the case opens at 受理审查, due 3 working days from the application.
* ``调解`` (``mediation``): 受理 is done on the row's 受理日期, so the 30-working-day mediation clock
  (条例 §38) counts from that day, and the dispute waits at 县级会诊调解 with that due date. The 三色 triage
  runs as for any case: a yellow dispute's 积案化解方案 is completed with ``见原系统记录``; a red dispute
  stops at its same-day joint mediation (红色预警：资深调解员主导协商), which is its mediation step.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from engine.clock import get_clock
from engine.imports import Column, ImportKind, Stage, register_import_kind
from engine.models.cases import Case
from workflows.disputes.settings import PROCESS_KEY, SOURCES

Values = Mapping[str, str]
Problems = dict[str, list[str]]

#: what the import writes where only the old file holds the record
ON_FILE = '见原系统记录（批量导入）'
_YES = frozenset({'是', '有', 'Y', 'y', 'true', 'TRUE', 'True', '1'})
_NO = frozenset({'否', '无', 'N', 'n', 'false', 'FALSE', 'False', '0', ''})

COLUMNS = (
    Column('applicant_name', '申请人', True, '王某'),
    Column('person_name', '患者姓名', True, '王某某'),
    Column('id_number', '患者公民身份号码', False, '430922195806120030'),
    Column('hospital', '医疗机构', True, '桃江县某医院'),
    Column('source', '案件来源', True, '当事人申请'),
    Column('applied_on', '申请日期', True, '2025-09-20'),
    Column('accepted_on', '受理日期', False, '2025-09-22'),
    Column('claimed_amount', '索赔金额（元）', True, '120000.00'),
    Column('dispute_summary', '争议事项', True, '术后感染，患方认为医院护理不当'),
    Column('patient_died', '患者是否死亡', False, '否'),
    Column('people_involved', '涉及人数', False, '1'),
)


def _flag(text: str) -> Any:
    """是/否 (and the usual spellings) as a boolean; anything else as written, for the form to refuse."""
    value = text.strip()
    if value in _YES:
        return True
    if value in _NO:
        return False
    return value


def start_data(values: Values) -> dict[str, Any]:
    """The start form's input from a row."""
    names = ('applicant_name', 'person_name', 'id_number', 'hospital', 'source', 'applied_on', 'claimed_amount',
             'dispute_summary')
    data: dict[str, Any] = {name: values.get(name, '') for name in names}
    data['id_number'] = str(data['id_number']).upper()
    data['patient_died'] = _flag(values.get('patient_died', ''))
    data['people_involved'] = values.get('people_involved') or '1'
    return data


def _day(values: Values, name: str) -> date | None:
    try:
        return date.fromisoformat(values.get(name, '')[:10])
    except ValueError:
        return None


def _check_mediation(values: Values) -> Problems:
    """调解 needs the day the dispute was accepted: not before the application, not after today."""
    if not values.get('accepted_on'):
        return {'accepted_on': ['处于“调解”阶段的，此项为必填项。']}
    accepted, applied = _day(values, 'accepted_on'), _day(values, 'applied_on')
    if accepted is None:
        return {'accepted_on': ['请输入 YYYY-MM-DD 格式的日期。']}
    if accepted > get_clock().today() or (applied is not None and accepted < applied):
        return {'accepted_on': ['受理日期须在申请日期与今天之间。']}
    return {}


def _check_source(values: Values) -> Problems:
    source = values.get('source', '')
    return {} if not source or source in SOURCES else {'source': [f'案件来源只能是 {"、".join(SOURCES)}。']}


def _fill_mediation(bpmn_id: str, values: Values, case: Case) -> dict[str, Any] | None:
    """The data 受理审查 (and a yellow dispute's plan) is completed with on the way to 调解."""
    steps: dict[str, dict[str, Any]] = {
        'accept_review': {'consent_status': 'consented', 'court_accepted': False, 'health_bureau_accepted': False,
                          'accepted_on': values.get('accepted_on', ''), 'start_level': '县', 'review_note': ON_FILE},
        'backlog_plan': {'lead_mediator': ON_FILE, 'backlog_plan_text': ON_FILE, 'stabilisation_measures': ON_FILE,
                         'start_level': '县'},
    }
    return steps.get(bpmn_id)


STAGES = (
    Stage('review', '受理审查', ('accept_review',), check=_check_source),
    Stage('mediation', '调解', ('session_county', 'session_township', 'session_village', 'red_lead'),
          check=lambda values: {**_check_source(values), **_check_mediation(values)}, fill=_fill_mediation),
)

KIND = ImportKind(name='disputes', label='医疗纠纷', process_key=PROCESS_KEY, columns=COLUMNS, stages=STAGES,
                  start_data=start_data)

register_import_kind(KIND)
