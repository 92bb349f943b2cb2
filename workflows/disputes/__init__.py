"""Medical-dispute people's mediation (医疗纠纷人民调解): registers its case profile, forms and operations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.access import register_lifecycle
from engine.profiles import CaseProfile, register_profile
from engine.statistics import register_mediation_outcomes
from workflows.disputes.settings import (
    CASE_PREFIX,
    OUTCOME_FAILED,
    OUTCOME_SETTLED,
    OUTCOME_TERMINATED,
    PROCESS_KEY,
    SOURCES,
)
from workflows.shared.id_numbers import id_number_problem

Problems = dict[str, list[str]]

#: the roles that work on dispute cases: the candidate groups of bpmn/disputes/dispute_mediation.bpmn
#: (medical data: no 司法所 or corrections officer sees them)
ROLES = ('village_mediator', 'township_mediator', 'mediator', 'senior_mediator', 'counsellor', 'expert',
         'health_bureau', 'hospital_liaison', 'supervisor')
#: a hospital's 医患办 sees only the disputes with its own hospital (engine.access.HOSPITAL_PREFIX)
HOSPITAL_ROLES = ('hospital_liaison',)


def _amount(value: Any) -> Decimal | None:
    """A decimal string or integer as Decimal (at most two places); None for anything else, floats included."""
    if isinstance(value, (bool, float)) or not isinstance(value, (str, int, Decimal)):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or amount < 0 or (isinstance(exponent, int) and exponent < -2):
        return None
    return amount


def _validate(data: Mapping[str, Any]) -> Problems:
    """Cross-field checks of the start data (the start form has checked each field already, an API client
    without the form has not)."""
    problems: Problems = {}
    if data.get('id_number'):
        problem = id_number_problem(str(data['id_number']))
        if problem:
            problems['id_number'] = [problem]
    if _amount(data.get('claimed_amount')) is None:
        problems['claimed_amount'] = ['索赔金额须为以字符串表示的金额（元），最多两位小数，例如 "120000.00"。']
    if data.get('source') not in SOURCES:
        problems['source'] = [f'案件来源只能是 {"、".join(SOURCES)}。']
    people = data.get('people_involved')
    if isinstance(people, bool) or not isinstance(people, int) or people < 1:
        problems['people_involved'] = ['涉及人数须为不小于 1 的整数。']
    if not isinstance(data.get('patient_died', False), bool):
        problems['patient_died'] = ['请选择是或否。']
    try:
        date.fromisoformat(str(data.get('applied_on')))
    except ValueError:
        problems['applied_on'] = ['请输入 YYYY-MM-DD 格式的申请日期。']
    for name in ('hospital', 'person_name'):
        if not str(data.get(name) or '').strip():
            problems[name] = ['此项为必填项。']
    return problems


def _columns(data: Mapping[str, Any]) -> dict[str, Any]:
    """The searched columns: patient, ID number, hospital, amount claimed, source."""
    return {
        'person_name': str(data['person_name']).strip(),
        'id_number': str(data['id_number']).strip().upper() if data.get('id_number') else None,
        'hospital': str(data['hospital']).strip(),
        'claimed_amount': _amount(data['claimed_amount']),
        'dispute_source': data['source'],
    }


def _title(data: Mapping[str, Any], name: str) -> str:
    return f'{data.get("person_name") or "患方"}与{data.get("hospital") or "医疗机构"}医疗纠纷'


PROFILE = CaseProfile(prefix=CASE_PREFIX, start_field='applied_on', title=_title, columns=_columns,
                      validate=_validate)


def register() -> None:
    """Register the case profile, the hand-made forms and the service operations; idempotent."""
    from workflows.disputes import (  # noqa: F401  (services register on import)
        forms,
        imports,  # noqa: F401  (registers the disputes import kind)
        services,
    )
    register_profile(PROCESS_KEY, PROFILE)
    register_lifecycle('disputes', (PROCESS_KEY,), ROLES, hospital_roles=HOSPITAL_ROLES)
    forms.register()
    # 调解成功率 (statistics, 工作评比): 不予受理 was never mediated, so it counts on neither side.
    register_mediation_outcomes(PROCESS_KEY, settled=(OUTCOME_SETTLED,), unsettled=(OUTCOME_FAILED, OUTCOME_TERMINATED))
