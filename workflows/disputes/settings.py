"""Settings of the medical-dispute mediation lifecycle that a bureau may change without touching BPMN.

The "431" minimums and the loop bounds are defaults: the designer can override them per deployment as
``camunda:properties`` of the 记录调解情况 service task (``minimum.village`` ...). The subsidy amounts
are the county's 以案定补 rates; the tier itself comes from the editable DMN table ``dispute_subsidy``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

#: the process key of the lifecycle (part of the API contract, ARCHITECTURE.md)
PROCESS_KEY: Final = 'dispute_mediation'
#: case number prefix: 医调
CASE_PREFIX: Final = 'YT'
#: the case clock of the 30 working days (医疗纠纷预防和处理条例 §38)
MEDIATION_CLOCK: Final = 'mediation'

#: 案件来源: the 五源 referral channels plus the parties' own application
SOURCES: Final = ('警源', '政源', '诉源', '访源', '网源', '当事人申请')

#: the mediation tiers of 四诊分调 / "431", lowest first (网格巡诊 is folded into the village tier)
LEVELS: Final = ('村', '乡镇', '县')
LEVEL_NAMES: Final = {'村': '网格/村（居）级初诊', '乡镇': '乡镇（街道）级复诊', '县': '县级会诊'}
#: the candidate group that mediates at each tier
LEVEL_GROUPS: Final = {'村': 'village_mediator', '乡镇': 'township_mediator', '县': 'mediator'}
#: property names on the 记录调解情况 service task that override the "431" minimums
LEVEL_PROPERTIES: Final = {'村': 'minimum.village', '乡镇': 'minimum.township', '县': 'minimum.county'}
#: "431" (张家界市永定区): village at least 4 attempts, township at least 3, county at least 1
DEFAULT_MINIMUMS: Final = {'村': 4, '乡镇': 3, '县': 1}

#: loop bounds: the lifecycle instance must stay small (ARCHITECTURE.md), so every loop has a ceiling
DEFAULT_MAX_SESSIONS_PER_LEVEL: Final = 10
DEFAULT_MAX_APPRAISALS: Final = 2
DEFAULT_MAX_EXPERT_CONSULTATIONS: Final = 3
DEFAULT_MAX_EXTENSIONS: Final = 2

#: 司法确认: 30 calendar days from the agreement taking effect (人民调解法 §33), reminders on these days
CONFIRMATION_WINDOW_DAYS: Final = 30
CONFIRMATION_REMINDER_DAYS: Final = (7, 20, 27)
#: reminders and follow-up visits are sent at this local hour
NOTICE_HOUR: Final = 9

#: 个案补贴 (以案定补) per tier, in yuan; decided by the county's 司法局 and 财政局
SUBSIDY_AMOUNTS: Final = {'一般': Decimal('300.00'), '疑难': Decimal('800.00'), '重大': Decimal('2000.00')}
#: outcomes that earn the subsidy; other closed cases keep their tier for the statistics only
SUBSIDISED_OUTCOMES: Final = frozenset({'调解成功'})

#: outcomes a dispute case ends with (Case.outcome)
OUTCOME_SETTLED: Final = '调解成功'
OUTCOME_FAILED: Final = '调解不成'
OUTCOME_TERMINATED: Final = '终止'
OUTCOME_REJECTED: Final = '不予受理'
