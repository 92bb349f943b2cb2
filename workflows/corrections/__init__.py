"""Community corrections (社区矫正): registers the case profiles, hand-made forms and service operations.

Process keys and their start fields are part of the API contract (ARCHITECTURE.md, process catalogue).
The lifecycles open a case (调查评估 ``DP``, 交付接收 → the corrections case ``SJ``); every other key is a
request started on an open corrections case named by its ``case_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

PROCESS_KEYS = ('corrections_assessment', 'corrections_reception', 'corrections_leave',
                'corrections_residence_change', 'corrections_alarm', 'corrections_sanction', 'corrections_release',
                'corrections_report', 'corrections_monitoring')
#: the roles that work on corrections cases: the candidate groups of the diagrams in bpmn/corrections
#: (criminal records: no mediator, expert or health-bureau member sees them)
ROLES = ('township_staff', 'county_officer', 'supervisor')

Problems = dict[str, list[str]]


def _date(data: Mapping[str, Any], field: str) -> date | None:
    value = data.get(field)
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _check_person(data: Mapping[str, Any]) -> Problems:
    from workflows.shared.id_numbers import id_number_problem

    value = data.get('id_number')
    problem = id_number_problem(str(value)) if value else None
    return {'id_number': [problem]} if problem else {}


def _order(data: Mapping[str, Any], earlier: str, later: str, message: str) -> Problems:
    first, second = _date(data, earlier), _date(data, later)
    return {later: [message]} if first and second and second < first else {}


def _check_assessment(data: Mapping[str, Any]) -> Problems:
    return _check_person(data)


def _check_reception(data: Mapping[str, Any]) -> Problems:
    problems = {**_check_person(data),
                **_order(data, 'term_start', 'term_end', '矫正结束日不能早于矫正起始日。'),
                **_order(data, 'judgment_effective_on', 'term_start', '矫正起始日不能早于判决（裁定、决定）生效日。')}
    if data.get('temporary_release_reason') and data.get('correction_type') != '暂予监外执行':
        problems['temporary_release_reason'] = ['只有暂予监外执行才填写暂予监外执行原因。']
    return problems


def _check_leave(data: Mapping[str, Any]) -> Problems:
    return {**_order(data, 'leave_from', 'leave_to', '返回日期不能早于外出日期。'),
            **_order(data, 'applied_on', 'leave_from', '外出应当事先申请：外出日期不能早于申请日期。')}


def _check_alarm(data: Mapping[str, Any]) -> Problems:
    try:
        datetime.fromisoformat(str(data.get('occurred_at') or ''))
    except ValueError:
        return {'occurred_at': ['请填写报警时间，格式如 2025-09-26T10:15:00。']}
    return {}


def _reception_columns(data: Mapping[str, Any]) -> dict[str, Any]:
    return {'person_name': str(data.get('person_name') or '') or None,
            'id_number': str(data.get('id_number') or '').upper() or None,
            'correction_type': data.get('correction_type') or None,
            'term_start_on': _date(data, 'term_start'), 'term_end_on': _date(data, 'term_end'),
            'commissioning_body': data.get('decision_body') or None,
            'is_minor': _is_minor(data, 'judgment_effective_on')}


def _assessment_columns(data: Mapping[str, Any]) -> dict[str, Any]:
    return {'person_name': str(data.get('person_name') or '') or None,
            'id_number': str(data.get('id_number') or '').upper() or None,
            'commissioning_body': data.get('commissioning_body') or None,
            'correction_type': data.get('proposed_correction_type') or None,
            'is_minor': _is_minor(data, 'commission_received_on')}


def _is_minor(data: Mapping[str, Any], on_field: str) -> bool:
    """Under 18 on the day in ``on_field`` (from the ID number's birth date), or declared a minor."""
    if data.get('is_minor') is True:
        return True
    number, on = str(data.get('id_number') or ''), _date(data, on_field)
    if len(number) != 18 or on is None or not number[6:14].isdigit():
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return (on.year - born.year - ((on.month, on.day) < (born.month, born.day))) < 18


def _no_columns(data: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _title(suffix: str) -> Callable[[Mapping[str, Any], str], str]:
    def title(data: Mapping[str, Any], name: str) -> str:
        extra = data.get('correction_type') or suffix
        return f'{data.get("person_name") or name}（{extra}）'
    return title


def register() -> None:
    """Register the corrections profiles, forms and service operations with the engine; idempotent."""
    from engine.access import register_lifecycle
    from engine.forms import register_form
    from engine.profiles import CaseProfile, register_profile
    from engine.statistics import register_out_of_contact
    from workflows.corrections import (
        imports,  # noqa: F401  (registers the offenders import kind)
        services,  # noqa: F401  (registers the corrections.* operations)
    )
    from workflows.corrections.forms import CorrectionTeamSchema

    register_form('corrections-team', CorrectionTeamSchema)
    register_lifecycle('corrections', PROCESS_KEYS, ROLES)
    register_profile('corrections_assessment', CaseProfile(
        prefix='DP', start_field='commission_received_on', title=_title('调查评估'), columns=_assessment_columns,
        validate=_check_assessment))
    register_profile('corrections_reception', CaseProfile(
        prefix='SJ', start_field='judgment_effective_on', title=_title('社区矫正'), columns=_reception_columns,
        validate=_check_reception))
    requests: dict[str, tuple[str, Callable[[Mapping[str, Any]], Problems]]] = {
        'corrections_leave': ('WC', _check_leave),
        'corrections_residence_change': ('BG', lambda data: {}),
        'corrections_alarm': ('BJ', _check_alarm),
        'corrections_sanction': ('JC', lambda data: {}),
        'corrections_release': ('JJ', lambda data: {}),
        'corrections_report': ('BB', lambda data: {}),
        'corrections_monitoring': ('DW', lambda data: {}),
    }
    for key, (prefix, check) in requests.items():
        register_profile(key, CaseProfile(prefix=prefix, columns=_no_columns, validate=check, attach_to_case=True,
                                          case_kinds=('corrections_reception',)))
    # 零脱管 (statistics, 工作评比): an alarm check that finds the offender out of contact is a 脱管 event.
    register_out_of_contact('corrections_alarm', 'verify', 'finding', '失联')
