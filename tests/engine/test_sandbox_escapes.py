"""The sandbox proof: escape attempts through every place a diagram can carry code, each one refused.

Every attempt goes through the real deployment (validation report) and, where the text compiles, the
real runtime against the real database. Each test asserts three things: the attempt is refused, the
refusal names the construct or element so the designer knows what to change, and nothing on the
server changed (no sentinel file, no stored definition, case or instance, an unchanged instance state).

Carriers: script task bodies, gateway conditions, timer expressions (timeDate/timeDuration/timeCycle),
DMN input expressions, input entries and output entries, message payloads (``camunda:expression``),
message correlation retrieval expressions, and the ``camunda:properties`` a user task's deadline reads.
Form field ``defaultValue`` is never evaluated; that is asserted too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.definitions import deploy, process_bundle, validate
from engine.errors import DeploymentRejected, WorkflowFault
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org

KEY = 'escape_attempt'
DECISION = 'escape_decision'
BPMN_ROOT = ('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
             'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" '
             'targetNamespace="http://fengqiao.example/test">')
USER_TASK = ('<bpmn:userTask id="review" name="审核" camunda:candidateGroups="township_staff">'
             '<bpmn:extensionElements><camunda:formData>{fields}</camunda:formData><camunda:properties>{props}'
             '</camunda:properties></bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming>'
             '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>')
DEADLINE = '<camunda:property name="deadline" value="10 working_days" />'


def _bpmn(nodes: str, flows: list[tuple[str, str]], *, root_extra: str = '',
          flow_conditions: dict[str, str] | None = None) -> str:
    conditions = flow_conditions or {}
    flow_xml = ''
    for number, (source, target) in enumerate(flows, start=1):
        flow_id = f'f{number}'
        condition = conditions.get(flow_id)
        body = (f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}'
                '</bpmn:conditionExpression>') if condition is not None else ''
        flow_xml += (f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{body}'
                     '</bpmn:sequenceFlow>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{BPMN_ROOT}{root_extra}'
            f'<bpmn:process id="{KEY}" name="逃逸测试" isExecutable="true">{nodes}{flow_xml}</bpmn:process>'
            '</bpmn:definitions>')


def _events(middle: str) -> str:
    return ('<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + middle
            + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>')


def _io(element: str, element_id: str, inner: str, attrs: str = '') -> str:
    return (f'<bpmn:{element} id="{element_id}" name="尝试"{attrs}><bpmn:incoming>f1</bpmn:incoming>'
            f'<bpmn:outgoing>f2</bpmn:outgoing>{inner}</bpmn:{element}>')


# -- carriers: each turns a piece of code into a document and names the element it sits on ----------------

class Carried(NamedTuple):
    """A document carrying an attempt, the element the report must name, and (for a DMN) the process using it."""

    source: str
    element: str
    process: str = ''


def script_task(code: str) -> Carried:
    nodes = _events(_io('scriptTask', 'attempt', f'<bpmn:script>{escape(code)}</bpmn:script>',
                        ' scriptFormat="python"'))
    return Carried(_bpmn(nodes, [('start', 'attempt'), ('attempt', 'end')]), 'attempt')


def gateway_condition(code: str) -> Carried:
    nodes = ('<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
             '<bpmn:exclusiveGateway id="gw" name="判断" default="f3"><bpmn:incoming>f1</bpmn:incoming>'
             '<bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:exclusiveGateway>'
             '<bpmn:endEvent id="end_yes"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
             '<bpmn:endEvent id="end_no"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>')
    flows = [('start', 'gw'), ('gw', 'end_yes'), ('gw', 'end_no')]
    return Carried(_bpmn(nodes, flows, flow_conditions={'f2': code}), 'f2')


def _timer(kind: str) -> Callable[[str], Carried]:
    def carrier(code: str) -> Carried:
        timer = (f'<bpmn:timerEventDefinition><bpmn:{kind} xsi:type="bpmn:tFormalExpression">{escape(code)}'
                 f'</bpmn:{kind}></bpmn:timerEventDefinition>')
        nodes = _events(_io('intermediateCatchEvent', 'attempt', timer))
        return Carried(_bpmn(nodes, [('start', 'attempt'), ('attempt', 'end')]), 'attempt')
    carrier.__name__ = f'timer_{kind}'
    return carrier


MESSAGE = '<bpmn:message id="msg" name="escape.message" />'


def message_payload(code: str) -> Carried:
    definition = f'<bpmn:messageEventDefinition messageRef="msg" camunda:expression={quoteattr(code)} />'
    nodes = _events(_io('intermediateThrowEvent', 'attempt', definition))
    return Carried(_bpmn(nodes, [('start', 'attempt'), ('attempt', 'end')], root_extra=MESSAGE), 'attempt')


def message_correlation(code: str) -> Carried:
    correlation = ('<bpmn:correlationProperty id="attempt" name="案件关联">'
                   '<bpmn:correlationPropertyRetrievalExpression messageRef="msg">'
                   f'<bpmn:formalExpression>{escape(code)}</bpmn:formalExpression>'
                   '</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>')
    definition = '<bpmn:messageEventDefinition messageRef="msg" />'
    nodes = _events(_io('intermediateThrowEvent', 'throw', definition))
    return Carried(_bpmn(nodes, [('start', 'throw'), ('throw', 'end')], root_extra=MESSAGE + correlation), 'attempt')


def deadline_property(code: str) -> Carried:
    props = f'<camunda:property name="deadline" value={quoteattr(code)} />'
    nodes = _events(USER_TASK.format(fields='', props=props))
    return Carried(_bpmn(nodes, [('start', 'review'), ('review', 'end')]), 'review')


def deadline_start_field(code: str) -> Carried:
    props = DEADLINE + f'<camunda:property name="deadline.from" value={quoteattr(code)} />'
    nodes = _events(USER_TASK.format(fields='', props=props))
    return Carried(_bpmn(nodes, [('start', 'review'), ('review', 'end')]), 'review')


def _dmn(input_expression: str = 'case_id', entry: str = '-', output: str = '"ok"') -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="escape_dmn" name="逃逸决策" '
            'namespace="http://camunda.org/schema/1.0/dmn">'
            f'<decision id="{DECISION}" name="逃逸决策"><decisionTable id="table" hitPolicy="UNIQUE">'
            '<input id="input_1" label="输入"><inputExpression id="input_expression_1" typeRef="string">'
            f'<text>{escape(input_expression)}</text></inputExpression></input>'
            '<output id="output_1" label="结果" name="result" typeRef="string" />'
            f'<rule id="rule_1"><inputEntry id="entry_1"><text>{escape(entry)}</text></inputEntry>'
            f'<outputEntry id="out_1"><text>{escape(output)}</text></outputEntry></rule>'
            '</decisionTable></decision></definitions>')


def _rule_task(code: str) -> str:
    # The attempt is repeated in the documentation so that each test's process has its own checksum, and
    # so its own entry in the per-process spec cache (which holds the decision it was parsed with).
    nodes = _events(f'<bpmn:businessRuleTask id="decide" name="决策" camunda:decisionRef="{DECISION}">'
                    f'<bpmn:documentation>{escape(code)}</bpmn:documentation><bpmn:incoming>f1</bpmn:incoming>'
                    '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:businessRuleTask>')
    return _bpmn(nodes, [('start', 'decide'), ('decide', 'end')])


def dmn_input_expression(code: str) -> Carried:
    # A '-' cell would not evaluate the input expression at all.
    return Carried(_dmn(input_expression=code, entry='"x"'), 'input_1', _rule_task(code))


def dmn_input_entry(code: str) -> Carried:
    return Carried(_dmn(entry=code), 'entry_1', _rule_task(code))


def dmn_output_entry(code: str) -> Carried:
    return Carried(_dmn(output=code), 'out_1', _rule_task(code))


timer_duration, timer_date, timer_cycle = _timer('timeDuration'), _timer('timeDate'), _timer('timeCycle')

# -- the corpus --------------------------------------------------------------------------------------------
# (carrier, code, what the refusal must name). SENTINEL is replaced by a path no attempt may create.

REFUSED_AT_DEPLOY: list[tuple[Callable[[str], Carried], str, str]] = [
    # script task bodies
    (script_task, 'x = ().__class__.__mro__[1].__subclasses__()', '__class__'),
    (script_task, "__import__('os').system('touch SENTINEL')", '__import__'),
    (script_task, "import os\nos.system('touch SENTINEL')", 'import'),
    (script_task, "from importlib import import_module\nimport_module('os')", 'from ... import'),
    (script_task, "open('SENTINEL', 'w').write('escaped')", 'open()'),
    (script_task, "exec(\"open('SENTINEL', 'w')\")", 'exec()'),
    (script_task, "code = compile('1', 'x', 'eval')", 'compile()'),
    (script_task, "T = type('T', (), {})", 'type()'),
    (script_task, "builtins = globals()['__builtins__']", 'globals()'),
    (script_task, 'def f():\n    pass\ng = f.__globals__', '__globals__'),
    (script_task, 'g = (x for x in [1])\nframe = g.gi_frame.f_back', 'gi_frame'),
    (script_task, "@(lambda f: f.__globals__)\ndef f():\n    pass", '__globals__'),
    (script_task, "with open('SENTINEL', 'w') as f:\n    f.write('x')", 'with'),
    (script_task, "class Escape:\n    pass", 'class Escape'),
    (script_task, "ｅｖａｌ(\"__import__('os')\")", 'eval()'),  # NFKC folds full-width letters into eval
    (script_task, 'x = [].__𝐜𝐥𝐚𝐬𝐬__', '__class__'),  # mathematical bold letters fold too
    (script_task, 'while True:\n    try:\n        pass\n    except:\n        pass', 'except'),
    (script_task, "name = '__cla' + 'ss__'\nc = getattr(1, name)", 'getattr()'),
    (script_task, "d = date(2025, 1, 1)\nsetattr(d, 'year', 1)", 'setattr()'),
    # gateway conditions
    (gateway_condition, "__import__('os').system('touch SENTINEL') == 0", '__import__'),
    (gateway_condition, "vars()['case_id'] > 0", 'vars()'),
    (gateway_condition, "locals()['__builtins__'] is not None", 'locals()'),
    (gateway_condition, '(lambda: 0).__code__ is not None', '__code__'),
    # timer expressions
    (timer_duration, "__import__('os').getenv('HOME')", '__import__'),
    (timer_date, "open('/etc/hostname').read()", 'open()'),
    (timer_cycle, "eval('\"R3/PT1H\"')", 'eval()'),
    (timer_duration, "'P1D' if datetime.now().mro() else 'P2D'", 'mro'),
    # DMN
    (dmn_input_expression, "__import__('os').getcwd()", '__import__'),
    (dmn_input_entry, '().__class__', '__class__'),
    (dmn_output_entry, "compile('1', 'x', 'eval')", 'compile()'),
    # message payload and correlation
    (message_payload, 'globals()', 'globals()'),
    (message_correlation, "vars()['__builtins__']", 'vars()'),
]

# These compile, so they deploy; the run-time guards stop them.
REFUSED_AT_RUN_TIME: list[tuple[Callable[[str], Carried], str, str]] = [
    (script_task, "big = 'x' * 10 ** 10", '重复结果过长'),
    (script_task, 'big = [0] * 10 ** 9', '重复结果过长'),
    (script_task, 'big = 2 ** 10 ** 8', '乘方结果过大'),
    (script_task, 'n = 0\nwhile True:\n    n += 1', '超时'),
    (script_task, 'def f(n):\n    return f(n + 1)\nf(0)', '递归'),
    (script_task, "s = 'x'\nwhile True:\n    s = s + s", '拼接结果过长'),
    (script_task, "s = [0]\nwhile True:\n    s.extend(s)", 'list.extend()'),
    (script_task, "pad = 'x'.ljust(10 ** 10)", 'str.ljust()'),
    (script_task, "s = 'x' * 1000000\nt = s.replace('', s)", 'str.replace()'),
    (script_task, "s = 'x' * 1000000\nt = ''.join([s] * 1000)", 'str.join()'),
    (script_task, "leak = '{0.__class__.__mro__}'.format(1)", 'str.format()'),
    (script_task, "leak = '{x.__class__}'.format_map({'x': 1})", 'str.format_map()'),
    (script_task, "d = date(2025, 1, 1)\nd.year = 1999", '不允许修改 date'),
    (script_task, "n = int(Decimal('1e1000000000'))", 'Decimal'),
    (script_task, "n = Decimal('1e1000000000').as_integer_ratio()", 'Decimal'),
    (script_task, "s = 'x' * 1000000\nbig = [s] * 1000", '任务数据过大'),
    (script_task, "s = 'x' * 1000000\nt = str([s] * 1000)", '转换成文本后过长'),
    (script_task, "words = sorted(['b', 'a'], key=str)", 'key'),
    (gateway_condition, "'%*s' % (10 ** 9, '') == ''", '% 格式化'),
    (gateway_condition, "len(f'{1:>1000000000}') > 0", 'f-string'),
    (timer_duration, "'P' + '1' * 10 ** 9 + 'D'", '重复结果过长'),
    (timer_date, "f\"{Decimal('1e1000000000'):f}\"", 'Decimal'),
    (dmn_output_entry, "'x' * 10 ** 9", '重复结果过长'),
    (dmn_input_entry, '? in [0] * 10 ** 9', '重复结果过长'),
    (dmn_input_expression, "round(Decimal('1e1000000000'))", 'Decimal'),
    (message_payload, '[case_id] * 10 ** 9', '重复结果过长'),
]

# Checked by the deadline rules, which read them as data: a text that is not a period or a field name
# is refused with an explanation; nothing in camunda:properties is ever evaluated.
REFUSED_PROPERTIES: list[tuple[Callable[[str], Carried], str, str]] = [
    (deadline_property, "__import__('os').system('touch SENTINEL')", 'deadline'),
    (deadline_start_field, "__import__('os').getcwd()", 'deadline.from'),
]


def _ids(corpus: list[tuple[Callable[[str], Carried], str, str]]) -> list[str]:
    return [f'{carrier.__name__}-{number}' for number, (carrier, _, _) in enumerate(corpus, start=1)]


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A file every attempt tries to create or would need to; it must never exist."""
    return tmp_path / 'escaped'


def _count(session: Session, model: type[object]) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def _assert_refused_at_deploy(session: Session, carried: Carried, named: str, rules: set[str]) -> str:
    source = carried.source
    report = validate(session, source)
    findings = [f for f in report.errors if f.element_id == carried.element and f.rule in rules]
    assert findings, report.to_dict()
    message = findings[0].message
    with pytest.raises(DeploymentRejected):
        deploy(session, source, actor=None, accept_warnings=True)
    session.rollback()
    assert _count(session, ProcessDefinition) == 0
    return message


@pytest.mark.parametrize(('carrier', 'code', 'named'), REFUSED_AT_DEPLOY, ids=_ids(REFUSED_AT_DEPLOY))
def test_attempt_is_refused_at_deploy_with_its_element_named(
        session: Session, sentinel: Path, carrier: Callable[[str], Carried], code: str, named: str) -> None:
    carried = carrier(code.replace('SENTINEL', str(sentinel)))
    message = _assert_refused_at_deploy(session, carried, named, {'expression', 'timer', 'dmn'})
    # "脚本未通过检查：…" / "规则第 1 行的输出值未通过检查：…": what was refused, and the construct.
    assert '未通过检查' in message and named in message, message
    assert not sentinel.exists()


@pytest.mark.parametrize(('carrier', 'code', 'named'), REFUSED_PROPERTIES, ids=_ids(REFUSED_PROPERTIES))
def test_code_in_deadline_properties_is_refused_as_data(
        session: Session, sentinel: Path, carrier: Callable[[str], Carried], code: str, named: str) -> None:
    carried = carrier(code.replace('SENTINEL', str(sentinel)))
    message = _assert_refused_at_deploy(session, carried, named, {'user-task-deadline'})
    assert named in message, message
    assert not sentinel.exists()


@pytest.mark.parametrize(('carrier', 'code', 'named'), REFUSED_AT_RUN_TIME, ids=_ids(REFUSED_AT_RUN_TIME))
def test_attempt_is_refused_at_run_time_and_nothing_is_stored(
        session: Session, org: Org, people: dict[str, User],
        carrier: Callable[[str], Carried], code: str, named: str) -> None:
    carried = carrier(code)
    # A decision is deployed before the process that refers to it.
    for source in (carried.source, carried.process):
        if source:
            deploy(session, source, actor=None, accept_warnings=True)
    session.commit()
    events_before = _count(session, AuditEvent)
    with pytest.raises(WorkflowFault) as info:
        runtime.start_case(session, KEY, {}, actor=people['staff'], org_unit=org.township)
    session.rollback()
    message = info.value.message
    assert message.startswith('脚本被拒绝执行：') and named in message, message
    assert len(message) < 2000
    assert (_count(session, Case), _count(session, ProcessInstance), _count(session, HumanTask)) == (0, 0, 0)
    assert _count(session, AuditEvent) == events_before


# -- a running case: the refused step changes nothing, and the fault is recorded with its reason ---------------

def _case_with_script_after_review(session: Session, org: Org, people: dict[str, User],
                                   code: str) -> tuple[Case, HumanTask]:
    fields = '<camunda:formField id="note" label="意见" type="string" />'
    script = _io('scriptTask', 'attempt', f'<bpmn:script>{escape(code)}</bpmn:script>', ' scriptFormat="python"')
    script = script.replace('f1', 'f2', 1).replace('<bpmn:outgoing>f2', '<bpmn:outgoing>f3')
    nodes = ('<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
             + USER_TASK.format(fields=fields, props=DEADLINE) + script
             + '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>')
    source = _bpmn(nodes, [('start', 'review'), ('review', 'attempt'), ('attempt', 'end')])
    deploy(session, source, actor=None, accept_warnings=True)
    session.commit()
    case, tasks = runtime.start_case(session, KEY, {'kept': '原值'}, actor=people['staff'], org_unit=org.township)
    session.commit()
    return case, tasks[0]


@pytest.mark.parametrize(('code', 'named'), [
    ("kept = 'changed'\nwhile True:\n    pass", '超时'),
    ("kept = 'changed'\nleak = '{0.__globals__}'.format(len)", 'str.format()'),
    ("kept = 'changed'\nd = datetime(2025, 1, 1)\nd.tzinfo = None", '不允许修改 datetime'),
    ("kept = 'changed'\nhuge = ['x' * 1000000] * 1000", '任务数据过大'),
], ids=['cpu', 'format-walk', 'setattr-datetime', 'data-alias'])
def test_refused_step_of_a_running_case_changes_nothing(
        session: Session, org: Org, people: dict[str, User], code: str, named: str) -> None:
    case, task = _case_with_script_after_review(session, org, people, code)
    instance = session.scalars(sa.select(ProcessInstance)).one()
    state, revision = json.dumps(instance.state, sort_keys=True), instance.revision
    with pytest.raises(WorkflowFault) as info:
        runtime.complete_task(session, task.id, {'note': '同意'}, actor=people['staff'],
                              scope=load_scope(session, people['staff']))
    session.rollback()
    session.refresh(instance)
    session.refresh(task)
    assert json.dumps(instance.state, sort_keys=True) == state and instance.revision == revision
    assert task.status == 'open'
    assert runtime.task_data(session, task)['kept'] == '原值'
    runtime.record_fault(session, instance.id, info.value.message)  # what the web layer does after the rollback
    session.commit()
    assert instance.status == 'error' and named in (instance.error_message or '')
    assert instance.error_message.startswith('脚本被拒绝执行：')


# -- carriers that are never evaluated ---------------------------------------------------------------------

def test_form_default_value_is_never_evaluated(session: Session, org: Org, people: dict[str, User],
                                               sentinel: Path) -> None:
    attempt = f"__import__('os').system('touch {sentinel}')"
    fields = f'<camunda:formField id="note" label="意见" type="string" defaultValue={quoteattr(attempt)} />'
    nodes = _events(USER_TASK.format(fields=fields, props=DEADLINE))
    deploy(session, _bpmn(nodes, [('start', 'review'), ('review', 'end')]), actor=None, accept_warnings=True)
    session.commit()
    _, tasks = runtime.start_case(session, KEY, {}, actor=people['staff'], org_unit=org.township)
    runtime.complete_task(session, tasks[0].id, {}, actor=people['staff'], scope=load_scope(session, people['staff']))
    session.commit()
    definition = session.scalars(sa.select(ProcessDefinition)).one()
    field = process_bundle(session, definition).user_tasks['review'].form.fields[0]
    assert field.default == attempt  # kept as text for the form to show, never run
    assert not sentinel.exists()


def test_print_reaches_no_console(session: Session, org: Org, people: dict[str, User],
                                  capfd: pytest.CaptureFixture[str]) -> None:
    deploy(session, script_task("print('escaped to stdout')\nprint(len)").source, actor=None, accept_warnings=True)
    session.commit()
    runtime.start_case(session, KEY, {}, actor=people['staff'], org_unit=org.township)
    session.commit()
    captured = capfd.readouterr()
    assert 'escaped' not in captured.out and 'escaped' not in captured.err
    assert session.scalars(sa.select(ProcessInstance.status)).one() == 'completed'


def test_corpus_size() -> None:
    # The issue asks for at least 30 escape attempts; this keeps the corpus from shrinking unnoticed.
    assert len(REFUSED_AT_DEPLOY) + len(REFUSED_AT_RUN_TIME) + len(REFUSED_PROPERTIES) + 4 >= 30
