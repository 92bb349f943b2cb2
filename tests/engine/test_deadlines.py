"""Deadline properties: parsing, deploy-time checks, the law's counting rules and the words for a due date."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.clock import LOCAL_ZONE
from engine.deadlines import (
    DeadlineRule,
    DeadlineSyntaxError,
    Escalation,
    Period,
    ReminderOffset,
    check_task_properties,
    compute_due,
    explain,
    parse_clock_hooks,
    parse_period,
    parse_reminders,
    parse_rule,
    period_end,
    reminder_times,
)
from engine.definitions import deploy
from engine.errors import DeploymentRejected
from engine.specs import parse_definition

D = date.fromisoformat
CREATED = datetime(2025, 9, 26, 1, 0, tzinfo=UTC)  # 09:00 Beijing
BPMN = Path(__file__).parent / 'bpmn'


def _local(when: datetime) -> str:
    return when.astimezone(LOCAL_ZONE).isoformat()


def _due(properties: dict[str, str], data: dict[str, object] | None = None,
         calendar: WorkCalendar | None = None) -> tuple[str, dict[str, object]]:
    rule = parse_rule(properties)
    assert rule is not None
    due = compute_due(rule, data or {}, created_dt=CREATED, calendar=calendar or WorkCalendar())
    assert due is not None
    return _local(due.due_dt), due.record


# -- the worked examples (legal-rules §1) ---------------------------------------------------------------

@pytest.mark.parametrize(('deadline', 'start', 'expected'), [
    ('10 working_days', '2025-09-26', '2025-10-16T23:59:59+08:00'),
    ('5 working_days', '2025-09-26', '2025-10-10T23:59:59+08:00'),
    ('30 working_days', '2025-09-26', '2025-11-13T23:59:59+08:00'),
    ('10 calendar_days', '2025-09-25', '2025-10-09T23:59:59+08:00'),   # raw 10-05 is a holiday
    ('30 calendar_days', '2026-01-20', '2026-02-24T23:59:59+08:00'),   # raw 02-19 is in Spring Festival
    ('10 日', '2025-09-10', '2025-09-22T23:59:59+08:00'),               # raw 09-20 is a Saturday
    ('1 months', '2026-01-31', '2026-02-28T23:59:59+08:00'),           # month end; 02-28 is a 调休 workday
    ('1 months', '2025-10-31', '2025-12-01T23:59:59+08:00'),           # 11-30 is a Sunday: rolled
    ('1 个月', '2025-01-15', '2025-02-17T23:59:59+08:00'),              # 02-15 is a Saturday: rolled
    ('48 hours', '2025-10-01T09:00:00+08:00', '2025-10-03T09:00:00+08:00'),  # straight through the holiday
    ('48 小时', '2025-10-01T09:00', '2025-10-03T09:00:00+08:00'),       # naive times are Beijing time
])
def test_worked_examples(deadline: str, start: str, expected: str) -> None:
    due, _ = _due({'deadline': deadline, 'deadline.from': 'start_on'}, {'start_on': start})
    assert due == expected


def test_calendar_day_roll_is_recorded() -> None:
    _, record = _due({'deadline': '10 calendar_days', 'deadline.from': 'start_on'}, {'start_on': '2025-09-25'})
    assert record['rolled_from'] == '2025-10-05' and record['due_on'] == '2025-10-09'


def test_period_end_directly() -> None:
    calendar = WorkCalendar()
    assert period_end(Period(10, 'working_days'), D('2025-09-26'), calendar) == (D('2025-10-16'), None)
    assert period_end(Period(10, 'calendar_days'), D('2025-09-25'), calendar) == (D('2025-10-09'), D('2025-10-05'))
    assert period_end(Period(1, 'months'), D('2024-01-31'), calendar) == (D('2024-02-29'), None)
    assert period_end(Period(12, 'months'), D('2024-02-29'), calendar) == (D('2025-02-28'), None)
    with pytest.raises(ValueError):
        period_end(Period(4, 'hours'), D('2025-09-26'), calendar)


def test_default_start_is_task_creation() -> None:
    due, record = _due({'deadline': '10 working_days'})
    assert due == '2025-10-16T23:59:59+08:00'
    assert record['start'] == '2025-09-26' and record['from_field'] is None and not record['from_missing']
    due, _ = _due({'deadline': '48 hours'})
    assert due == '2025-09-28T09:00:00+08:00'


def test_missing_start_field_falls_back_to_creation_and_says_so() -> None:
    due, record = _due({'deadline': '5 working_days', 'deadline.from': 'received_on'}, {'received_on': ''})
    assert due == '2025-10-10T23:59:59+08:00' and record['from_missing'] is True
    assert '未取得起算日期“received_on”' in explain(record)


def test_start_field_as_date_object_and_datetime() -> None:
    assert _due({'deadline': '5 working_days', 'deadline.from': 'd'}, {'d': D('2025-09-26')})[0] == \
        '2025-10-10T23:59:59+08:00'
    # 2025-09-25 20:00 UTC is already the 26th in Beijing.
    assert _due({'deadline': '5 working_days', 'deadline.from': 'd'}, {'d': '2025-09-25T20:00:00+00:00'})[0] == \
        '2025-10-10T23:59:59+08:00'


def test_expedited_alternative() -> None:
    properties = {'deadline': '10 working_days', 'deadline.expedited': '5 working_days',
                  'deadline.from': 'commission_received_on'}
    data: dict[str, object] = {'commission_received_on': '2025-09-26'}
    assert _due(properties, data)[0] == '2025-10-16T23:59:59+08:00'
    for flag in (True, 'true', '是'):
        due, record = _due(properties, {**data, 'expedited': flag})
        assert due == '2025-10-10T23:59:59+08:00' and record['expedited'] is True and record['length'] == 5
    assert _due(properties, {**data, 'expedited': False})[0] == '2025-10-16T23:59:59+08:00'
    custom = {**properties, 'deadline.expedited_field': 'summary_procedure'}
    assert _due(custom, {**data, 'summary_procedure': True})[0] == '2025-10-10T23:59:59+08:00'


def test_uncovered_year_is_recorded_and_explained() -> None:
    due, record = _due({'deadline': '3 working_days', 'deadline.from': 'd'}, {'d': '2026-12-30'})
    assert due == '2027-01-04T23:59:59+08:00'
    assert record['calendar']['fallback_years'] == [2027]  # type: ignore[index]
    assert '2027 年无法定节假日数据' in explain(record)


def test_overrides_change_the_due_date() -> None:
    calendar = WorkCalendar({D('2025-10-13'): False})
    assert _due({'deadline': '10 working_days', 'deadline.from': 'd'}, {'d': '2025-09-26'}, calendar)[0] == \
        '2025-10-17T23:59:59+08:00'


# -- the record and its words ---------------------------------------------------------------------------

ASSESSMENT = {
    'deadline': '10 working_days', 'deadline.from': 'commission_received_on', 'deadline.from_label': '收到委托函',
    'deadline.basis': '社区矫正法实施办法 §14', 'reminders': '-5wd,-2wd,0', 'escalate.to': 'supervisor',
    'escalate.level': 'county',
}


def test_rule_record_is_json_and_complete() -> None:
    _, record = _due(ASSESSMENT, {'commission_received_on': '2025-09-26'})
    assert record['kind'] == 'deadline'
    assert {k: record[k] for k in ('unit', 'length', 'start', 'from_label', 'basis', 'due_on', 'due')} == {
        'unit': 'working_days', 'length': 10, 'start': '2025-09-26', 'from_label': '收到委托函',
        'basis': '社区矫正法实施办法 §14', 'due_on': '2025-10-16', 'due': '2025-10-16T23:59:59+08:00'}
    assert record['pauses'] == [] and record['extension'] is None
    assert record['reminders'] == ['-5wd', '-2wd', '0']
    assert record['escalate'] == {'to': 'supervisor', 'level': 'county'}
    assert record['calendar']['package'] == 'chinesecalendar'  # type: ignore[index]
    import json
    assert json.loads(json.dumps(record)) == record


def test_explain_in_chinese_and_english() -> None:
    _, record = _due(ASSESSMENT, {'commission_received_on': '2025-09-26'})
    assert explain(record) == '10 个工作日，自 2025-09-26 收到委托函起算（社区矫正法实施办法 §14）→ 2025-10-16 到期'
    assert explain(record, 'en') == ('10 working days from 收到委托函 on 2025-09-26 (社区矫正法实施办法 §14) '
                                     '→ due 2025-10-16')
    _, record = _due({'deadline': '10 calendar_days', 'deadline.from': 'd'}, {'d': '2025-09-25'})
    assert explain(record) == '10 日，自 2025-09-25 起算，末日 2025-10-05 为休息日，顺延 → 2025-10-09 到期'
    _, record = _due({'deadline': '48 hours', 'deadline.from': 'd', 'deadline.from_label': '收到逮捕请求'},
                     {'d': '2025-10-01T09:00:00+08:00'})
    assert explain(record) == '48 小时，自 2025-10-01 09:00 收到逮捕请求起算 → 2025-10-03 09:00 到期'
    assert explain(record, 'en') == '48 hours from 收到逮捕请求 on 2025-10-01 09:00 → due 2025-10-03 09:00'
    _, record = _due({'deadline': '1 working_days'})
    assert explain(record) == '1 个工作日，自 2025-09-26 任务创建起算 → 2025-09-28 到期'


# -- parsing --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(('text', 'period'), [
    ('10 working_days', Period(10, 'working_days')),
    ('10working_days', Period(10, 'working_days')),
    ('10 工作日', Period(10, 'working_days')),
    ('10个工作日', Period(10, 'working_days')),
    ('10 calendar_days', Period(10, 'calendar_days')),
    ('30 日', Period(30, 'calendar_days')),
    ('30 天', Period(30, 'calendar_days')),
    ('48 hours', Period(48, 'hours')),
    ('48 小时', Period(48, 'hours')),
    ('1 months', Period(1, 'months')),
    ('6 个月', Period(6, 'months')),
    ('P3D', Period(3, 'calendar_days')),
    ('P2W', Period(14, 'calendar_days')),
    ('PT48H', Period(48, 'hours')),
    ('P1M', Period(1, 'months')),
])
def test_parse_period(text: str, period: Period) -> None:
    assert parse_period(text) == period


@pytest.mark.parametrize('text', ['10', 'ten working_days', '10 fortnights', '-3 working_days', 'P1DT2H',
                                  '99999 working_days', ''])
def test_parse_period_refuses(text: str) -> None:
    with pytest.raises(DeadlineSyntaxError):
        parse_period(text)


def test_parse_reminders() -> None:
    assert parse_reminders('-5wd, -2wd,0') == (ReminderOffset(-5, 'wd'), ReminderOffset(-2, 'wd'),
                                               ReminderOffset(0, 'wd'))
    assert [o.spec for o in parse_reminders('-1d，-4h,+1wd,0,-0h')] == ['-1d', '-4h', '+1wd', '0']
    assert parse_reminders('') == ()
    for bad in ('-5', '-5x', 'soon', '-5 weeks'):
        with pytest.raises(DeadlineSyntaxError):
            parse_reminders(bad)


def test_parse_rule_full() -> None:
    rule = parse_rule({**ASSESSMENT, 'deadline.expedited': '5 工作日', 'other': 'ignored'})
    assert rule == DeadlineRule(
        period=Period(10, 'working_days'), expedited=Period(5, 'working_days'), expedited_field='expedited',
        from_field='commission_received_on', from_label='收到委托函', basis='社区矫正法实施办法 §14',
        reminders=(ReminderOffset(-5, 'wd'), ReminderOffset(-2, 'wd'), ReminderOffset(0, 'wd')),
        escalation=Escalation('supervisor', 'county'))
    assert parse_rule({'placeholder': 'x'}) is None
    assert parse_rule({'clock': 'mediation', 'reminders': '0'}) == DeadlineRule(
        clock='mediation', reminders=(ReminderOffset(0, 'wd'),))
    assert parse_rule({'deadline': '3 日', 'escalate.level': 'parent'}).escalation == Escalation(  # type: ignore[union-attr]
        'supervisor', 'parent')


def test_parse_clock_hooks() -> None:
    hooks = parse_clock_hooks({'clock.start': 'mediation 30 working_days from accepted_on',
                               'clock.from_label': '受理', 'clock.basis': '条例 §38',
                               'clock.pause': 'mediation, other', 'clock.extend_field': 'agreed_on',
                               'clock': 'mediation'})
    assert hooks.start is not None and hooks.start.name == 'mediation'
    assert hooks.start.period == Period(30, 'working_days') and hooks.start.from_field == 'accepted_on'
    assert hooks.start.from_label == '受理' and hooks.start.basis == '条例 §38'
    assert hooks.pause == ('mediation', 'other') and hooks.extend == 'mediation'
    assert hooks.extend_field == 'agreed_on'
    assert not parse_clock_hooks({'deadline': '3 日'})
    no_from = parse_clock_hooks({'clock.start': 'review 15 日'}).start
    assert no_from is not None and no_from.from_field is None and no_from.period == Period(15, 'calendar_days')


@pytest.mark.parametrize(('properties', 'fragment'), [
    ({'deadline': '10 fortnights'}, 'deadline'),
    ({'deadline': '10 日', 'reminders': '-5wd,soon'}, 'soon'),
    ({'deadline': '10 日', 'escalate.level': 'galaxy'}, 'galaxy'),
    ({'deadline': '10 日', 'deadline.from': 'received on'}, 'deadline.from'),
    ({'deadline': '10 日', 'deadline.frm': 'x'}, 'deadline.frm'),
    ({'reminders': '-1wd'}, 'reminders'),
    ({'escalate.to': 'supervisor'}, 'escalate.to'),
    ({'deadline': '10 日', 'clock': 'mediation'}, 'clock'),
    ({'deadline.expedited': '5 日'}, 'deadline.expedited'),
    ({'clock.start': 'mediation soon'}, 'clock.start'),
    ({'clock.start': 'mediation 2 months from accepted_on'}, 'months'),
    ({'clock.start': 'mediation 48 hours'}, 'hours'),
    ({'clock.extend_field': 'agreed_on'}, 'clock.extend'),
    ({'clock.pause': 'bad name!'}, 'clock.pause'),
])
def test_check_task_properties_reports(properties: dict[str, str], fragment: str) -> None:
    problems = check_task_properties(properties)
    assert problems and any(fragment in p for p in problems), problems


def test_check_task_properties_reports_every_problem_once() -> None:
    problems = check_task_properties({'deadline': '3 fortnights', 'reminders': '-5x', 'escalate.level': 'up',
                                      'deadline.frm': 'x'})
    assert len(problems) == 4 and len(set(problems)) == 4


def test_check_task_properties_accepts_good_ones_and_ignores_others() -> None:
    assert check_task_properties({**ASSESSMENT, 'deadline.expedited': '5 工作日', 'placeholder': 'x'}) == []
    assert check_task_properties({'deadline': 'P3D', 'calendar': 'workdays'}) == []
    assert check_task_properties({'clock': 'mediation', 'reminders': '-5wd,0', 'clock.pause': 'other'}) == []


# -- deployment -----------------------------------------------------------------------------------------

_BAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="http://x">
  <bpmn:process id="bad_deadline" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="assess" name="调查评估" camunda:candidateGroups="township_staff">
      <bpmn:extensionElements><camunda:formData /><camunda:properties>
        <camunda:property name="deadline" value="10 fortnights" />
        <camunda:property name="reminders" value="-5wd,tomorrow" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="assess" />
    <bpmn:sequenceFlow id="f2" sourceRef="assess" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_deploy_refuses_bad_deadline_properties(session: Session) -> None:
    with pytest.raises(DeploymentRejected) as caught:
        deploy(session, _BAD, actor=None)
    problems = caught.value.problems
    assert [p['element'] for p in problems] == ['assess', 'assess']
    assert 'fortnights' in problems[0]['message'] and 'tomorrow' in problems[1]['message']


def test_fixture_diagrams_pass() -> None:
    for name in ('deadline_assessment', 'deadline_boundary', 'mediation_clock'):
        parse_definition((BPMN / f'{name}.bpmn').read_bytes())


# -- reminder ladder ------------------------------------------------------------------------------------

def test_reminder_times() -> None:
    calendar = WorkCalendar()
    due = datetime(2025, 10, 16, 23, 59, 59, tzinfo=LOCAL_ZONE)
    times = reminder_times(parse_reminders('0,-2wd,-5wd,-1d,-4h'), due, calendar)
    assert [(o.spec, _local(t)) for o, t in times] == [
        ('-5wd', '2025-10-10T09:00:00+08:00'),
        ('-2wd', '2025-10-14T09:00:00+08:00'),
        ('-1d', '2025-10-15T09:00:00+08:00'),
        ('0', '2025-10-16T09:00:00+08:00'),
        ('-4h', '2025-10-16T19:59:59+08:00'),
    ]
    # 5 working days before 10-10 reach back over the holiday to Sunday 09-28's make-up day and beyond.
    early = reminder_times(['-5wd', '-4wd'], datetime(2025, 10, 10, 23, 59, 59, tzinfo=LOCAL_ZONE), calendar)
    assert [_local(t)[:10] for _, t in early] == ['2025-09-26', '2025-09-28']
