"""Importing offenders under community corrections (``offenders``): columns, stages and the steps they skip.

Importable stages of ``corrections_reception``:

* ``交付接收`` (``reception``): the case opens at its first steps (法律文书回执 and 报到登记), whose due dates
  count from the documents' arrival and the judgment's effective date, as for a case started by hand.
* ``矫正执行`` (``supervision``): 交付接收 is done. The import completes 回执, 报到登记, 入矫宣告, 矫正小组
  and 管理类别 with the row's data (an overdue 查找 as found on the 报到日期, so a late report still gets
  its proposal and an in-time one none) (报到日期, 居住地, 管理类别) and records what only the old file holds as
  ``见原系统记录``; the lifecycle then starts the periodic reports and the release at the end of the term and
  waits for it (``wait_concluded``). The case must belong to its 司法所 and its term must still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from engine.imports import Column, ImportKind, Stage, register_import_kind
from engine.models.cases import Case
from workflows.corrections.operations import MANAGEMENT_LEVELS, gender_from_id_number, today

Values = Mapping[str, str]
Problems = dict[str, list[str]]

#: what the import writes where only the old file holds the record
ON_FILE = '见原系统记录（批量导入）'

COLUMNS = (
    Column('person_name', '姓名', True, '李某'),
    Column('id_number', '公民身份号码', True, '431381198503120015'),
    Column('gender', '性别', False, '男'),
    Column('correction_type', '矫正类别', True, '缓刑'),
    Column('decision_body', '决定机关', True, '冷水江市人民法院'),
    Column('crime', '罪名', True, '危险驾驶罪'),
    Column('judgment_effective_on', '判决生效日期', True, '2025-09-25'),
    Column('term_start', '矫正起始日', True, '2025-09-25'),
    Column('term_end', '矫正结束日', True, '2026-09-24'),
    Column('documents_received_on', '收到法律文书日期', False, '2025-09-26'),
    Column('reported_on', '报到日期', False, '2025-09-28'),
    Column('residence_address', '居住地', False, '冷水江市锡矿山街道'),
    Column('management_level', '管理类别', False, '普管'),
)


def start_data(values: Values) -> dict[str, Any]:
    """The start form's input from a row."""
    names = ('person_name', 'id_number', 'gender', 'correction_type', 'decision_body', 'crime',
             'judgment_effective_on', 'term_start', 'term_end', 'documents_received_on', 'residence_address')
    data: dict[str, Any] = {name: values.get(name, '') for name in names}
    data['id_number'] = str(data['id_number']).upper()
    return data


def _day(values: Values, name: str) -> date | None:
    try:
        return date.fromisoformat(values.get(name, '')[:10])
    except ValueError:
        return None


def _check_supervision(values: Values) -> Problems:
    """矫正执行 needs the report date, the residence and the 管理类别, and a term that still runs."""
    problems: Problems = {}
    for name in ('reported_on', 'residence_address', 'management_level'):
        if not values.get(name):
            problems[name] = ['处于“矫正执行”阶段的，此项为必填项。']
    reported, effective = _day(values, 'reported_on'), _day(values, 'judgment_effective_on')
    if values.get('reported_on') and reported is None:
        problems['reported_on'] = ['请输入 YYYY-MM-DD 格式的日期。']
    elif reported is not None and (reported > today() or (effective is not None and reported < effective)):
        problems['reported_on'] = ['报到日期须在判决生效日与今天之间。']
    level = values.get('management_level')
    if level and level not in MANAGEMENT_LEVELS:
        problems['management_level'] = [f'管理类别只能是 {"、".join(MANAGEMENT_LEVELS)}。']
    term_end = _day(values, 'term_end')
    if term_end is not None and term_end < today():
        problems['term_end'] = ['矫正期已满，不能作为在矫人员导入。']
    return problems


def _team(values: Values) -> dict[str, Any]:
    # The real team is on file; the §25 check (a woman in a woman's team) was the old system's to make.
    gender = values.get('gender') or gender_from_id_number(values.get('id_number', '').upper()) or '男'
    members = [{'name': ON_FILE[:30], 'role': '司法所工作人员', 'gender': gender},
               {'name': ON_FILE[:30], 'role': '家庭成员或监护人', 'gender': gender}]
    return {'members': members, 'plan_summary': f'矫正方案{ON_FILE}。', 'risk_assessment': ON_FILE,
            'proposed_level': values.get('management_level', '')}


def _fill_supervision(bpmn_id: str, values: Values, case: Case) -> dict[str, Any] | None:
    """The data each step of 交付接收 is completed with on the way to 矫正执行."""
    received = values.get('documents_received_on') or values.get('judgment_effective_on', '')
    reported = values.get('reported_on', '')
    steps: dict[str, dict[str, Any]] = {
        'receipt': {'documents_received_on': received, 'documents_complete': True, 'receipt_sent_on': received},
        'report': {'reported_on': reported, 'reception_method': '自行报到', 'township_code': case.org_unit.code,
                   'residence_address': values.get('residence_address', '')},
        # The 10-day report deadline of an old judgment has passed by the time of the import, so the overdue
        # timer fires as the case opens: the search is closed as found, on the report date of the row.
        'search': {'notified_on': reported, 'found': True, 'reported_on': reported, 'township_code': case.org_unit.code,
                   'search_notes': ON_FILE},
        'declare': {'declared_on': reported, 'venue': ON_FILE, 'attendees': ON_FILE},
        'team': _team(values),
        'approve_level': {'management_level': values.get('management_level', ''), 'level_reason': ON_FILE},
    }
    return steps.get(bpmn_id)


STAGES = (
    # An old judgment's report deadline has passed: the case then waits at 查找 (search), as it would by hand.
    Stage('reception', '交付接收', ('report', 'search')),
    Stage('supervision', '矫正执行', ('wait_concluded',), check=_check_supervision, fill=_fill_supervision,
          unit_levels=('township',)),
)

KIND = ImportKind(name='offenders', label='社区矫正对象', process_key='corrections_reception', columns=COLUMNS,
                  stages=STAGES, start_data=start_data)

register_import_kind(KIND)
