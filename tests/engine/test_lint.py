"""engine.lint: one focused test per rule (a tiny diagram that trips it, one that does not), the shipped
diagrams, and the OMG MIWG reference diagrams."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy.orm import Session

from engine.definitions import validate
from engine.lint import ERROR, RULES, WARNING, Finding, ValidationReport, validate_source
from engine.specs import BPMN_NS, supported_event_definitions, supported_flow_nodes

ROOT = Path(__file__).resolve().parents[2]
MIWG = ROOT / 'tests' / 'fixtures' / 'miwg'
SHIPPED = sorted((ROOT / 'bpmn').rglob('*.bpmn'))
SHIPPED_DMN = sorted((ROOT / 'bpmn').rglob('*.dmn'))

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
        ' xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"'
        ' xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI"'
        ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="http://fengqiao.example/t">\n')
TIMER = '<bpmn:timerEventDefinition><bpmn:timeDuration>"P1D"</bpmn:timeDuration></bpmn:timerEventDefinition>'


# -- building tiny diagrams ------------------------------------------------------------------------------

def bpmn(body: str, *, extra: str = '', executable: str = 'true', after: str = '') -> str:
    """A document with one process ``p`` holding ``body``; ``extra`` goes before it, ``after`` after it."""
    return (f'{HEAD}{extra}<bpmn:process id="p" name="测试流程" isExecutable="{executable}">\n{body}\n'
            f'</bpmn:process>\n{after}</bpmn:definitions>\n')


def task(task_id: str = 't', name: str = '办理', *, groups: str = 'township_staff', form: bool = True,
         deadline: str | None = '5 working_days', attrs: str = '', properties: str = '') -> str:
    """A user task that passes every user-task rule unless told otherwise."""
    ext = '<camunda:formData />' if form else ''
    props = (f'<camunda:property name="deadline" value="{deadline}" />' if deadline else '') + properties
    if props:
        ext += f'<camunda:properties>{props}</camunda:properties>'
    label = f' name="{name}"' if name else ''
    group = f' camunda:candidateGroups="{groups}"' if groups else ''
    extension = f'<bpmn:extensionElements>{ext}</bpmn:extensionElements>' if ext else ''
    return f'<bpmn:userTask id="{task_id}"{label}{group} {attrs}>{extension}</bpmn:userTask>\n'


def start(node_id: str = 's', inner: str = '', name: str = '') -> str:
    label = f' name="{name}"' if name else ''
    return f'<bpmn:startEvent id="{node_id}"{label}>{inner}</bpmn:startEvent>\n'


def end(node_id: str = 'e', inner: str = '', name: str = '') -> str:
    label = f' name="{name}"' if name else ''
    return f'<bpmn:endEvent id="{node_id}"{label}>{inner}</bpmn:endEvent>\n'


def flow(source: str, target: str, *, flow_id: str = '', condition: str = '', name: str = '') -> str:
    flow_id = flow_id or f'{source}_{target}'
    label = f' name="{name}"' if name else ''
    body = f'<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>' if condition else ''
    return (f'<bpmn:sequenceFlow id="{flow_id}"{label} sourceRef="{source}" targetRef="{target}">{body}'
            '</bpmn:sequenceFlow>\n')


def line(*ids: str) -> str:
    """Flows joining ``ids`` one after the other."""
    return ''.join(flow(a, b) for a, b in zip(ids, ids[1:], strict=False))


def shape(element_id: str) -> str:
    return (f'<bpmndi:BPMNShape id="{element_id}_di" bpmnElement="{element_id}">'
            f'<dc:Bounds x="0" y="0" width="36" height="36" /></bpmndi:BPMNShape>')


def edge(element_id: str) -> str:
    return (f'<bpmndi:BPMNEdge id="{element_id}_di" bpmnElement="{element_id}">'
            f'<di:waypoint x="0" y="0" /><di:waypoint x="10" y="0" /></bpmndi:BPMNEdge>')


def diagram(shapes: list[str], edges: list[str]) -> str:
    return ('<bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="plane" bpmnElement="p">'
            + ''.join(map(shape, shapes)) + ''.join(map(edge, edges)) + '</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n')


GOOD = bpmn(start() + task() + end() + line('s', 't', 'e'))
# s -> exclusive gateway g: "approved" -> e1, default -> e2
DECISION = bpmn(start() + '<bpmn:exclusiveGateway id="g" name="是否同意" default="g_e2" />' + end('e1') + end('e2')
                + flow('s', 'g') + flow('g', 'e1', condition='approved') + flow('g', 'e2'))


def report(source: str, **kwargs: object) -> ValidationReport:
    result = validate_source(source, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, ValidationReport)
    return result


def found(source: str, rule: str, **kwargs: object) -> list[Finding]:
    """The findings of ``rule`` in the report of ``source``, checking each has the rule's severity."""
    result = report(source, **kwargs)
    findings = [f for f in [*result.errors, *result.warnings] if f.rule == rule]
    for finding in findings:
        assert finding.severity == RULES[rule].severity
        assert (finding in result.errors) == (finding.severity == ERROR)
        assert finding.message
    return findings


# -- the lint rules: (rule, diagram that trips it, the element named, diagram that does not) --------------

def _gateway_join_fork() -> str:
    return bpmn(start() + task('t1', '补正') + end('e1') + end('e2')
                + '<bpmn:exclusiveGateway id="g1" name="是否补正" default="g1_g2" />'
                + '<bpmn:exclusiveGateway id="g2" name="是否受理" default="g2_e2" />'
                + flow('s', 'g1') + flow('g1', 't1', condition='incomplete') + flow('g1', 'g2') + flow('t1', 'g2')
                + flow('g2', 'e1', condition='accepted') + flow('g2', 'e2'))


def _fake_join() -> str:
    return bpmn(start() + task() + task('t2', '补正') + end()
                + '<bpmn:exclusiveGateway id="g" name="是否补正" default="g_t" />'
                + flow('s', 'g') + flow('g', 't2', condition='incomplete') + flow('g', 't') + line('t2', 't', 'e'))


def _event_sub_process(start_inner: str) -> str:
    return bpmn(start() + task() + end() + line('s', 't', 'e')
                + '<bpmn:subProcess id="esp" name="撤回申请" triggeredByEvent="true">'
                + start('es', start_inner, name='收到撤回') + end('ee') + flow('es', 'ee')
                + '</bpmn:subProcess>')


def _sub_process(start_inner: str) -> str:
    inner = start('ss', start_inner) + task('st', '子任务') + end('se') + line('ss', 'st', 'se')
    return bpmn(start() + f'<bpmn:subProcess id="sub" name="走访">{inner}</bpmn:subProcess>' + end()
                + line('s', 'sub', 'e'))


def _parallel(ends: str) -> str:
    return bpmn(start() + '<bpmn:parallelGateway id="fork" />' + task('t1', '走访') + task('t2', '调查')
                + ends + flow('s', 'fork') + flow('fork', 't1') + flow('fork', 't2') + flow('t1', 'e1')
                + flow('t2', 'e2'))


def _event_gateway(targets: int) -> str:
    catches = ''.join(f'<bpmn:intermediateCatchEvent id="c{i}" name="等待{i}">{TIMER}</bpmn:intermediateCatchEvent>'
                      + end(f'e{i}') + flow(f'c{i}', f'e{i}') + flow('eg', f'c{i}') for i in range(targets))
    return bpmn(start() + '<bpmn:eventBasedGateway id="eg" name="等待结果" />' + catches + flow('s', 'eg'))


def _ad_hoc(inner: str) -> str:
    return bpmn(start() + f'<bpmn:adHocSubProcess id="adhoc" name="自由办理">{inner}</bpmn:adHocSubProcess>'
                + end() + line('s', 'adhoc', 'e'))


LINT_CASES = [
    pytest.param('start-event-required', bpmn(task() + end() + line('t', 'e')), 'p', GOOD, id='start-event-required'),
    pytest.param('end-event-required', bpmn(start() + task() + line('s', 't')), 'p', GOOD, id='end-event-required'),
    pytest.param('no-disconnected', bpmn(start() + task() + end() + line('s', 't', 'e') + task('lonely', '孤立')),
                 'lonely', GOOD, id='no-disconnected'),
    pytest.param('no-implicit-start', bpmn(start() + task() + end() + line('s', 't', 'e') + task('orphan', '补录')
                                           + flow('orphan', 'e')), 'orphan', GOOD, id='no-implicit-start'),
    pytest.param('no-implicit-end', bpmn(start() + '<bpmn:parallelGateway id="fork" />' + task() + task('dead', '抄送')
                                         + end() + flow('s', 'fork') + flow('fork', 't') + flow('fork', 'dead')
                                         + flow('t', 'e')), 'dead', GOOD, id='no-implicit-end'),
    pytest.param('no-implicit-split', bpmn(start() + task() + end('e1') + end('e2') + flow('s', 't') + flow('t', 'e1')
                                           + flow('t', 'e2')), 't', GOOD, id='no-implicit-split'),
    pytest.param('conditional-flows', DECISION.replace(' default="g_e2"', ''), 'g_e2', DECISION,
                 id='conditional-flows'),
    pytest.param('fake-join', _fake_join(), 't', GOOD, id='fake-join'),
    pytest.param('label-required', bpmn(start() + task(name='') + end() + line('s', 't', 'e')), 't', GOOD,
                 id='label-required'),
    pytest.param('no-complex-gateway', bpmn(start() + '<bpmn:complexGateway id="cg" name="复杂" />' + end()
                                            + line('s', 'cg', 'e')), 'cg', GOOD, id='no-complex-gateway'),
    pytest.param('no-duplicate-sequence-flows', bpmn(start() + task() + end() + line('s', 't', 'e')
                                                     + flow('s', 't', flow_id='again')), 'again', GOOD,
                 id='no-duplicate-sequence-flows'),
    pytest.param('no-gateway-join-fork', _gateway_join_fork(), 'g2', DECISION, id='no-gateway-join-fork'),
    pytest.param('no-inclusive-gateway', DECISION.replace('exclusiveGateway', 'inclusiveGateway'), 'g', DECISION,
                 id='no-inclusive-gateway'),
    pytest.param('single-blank-start-event', bpmn(start() + start('s2') + task() + end() + line('s', 't', 'e')
                                                  + flow('s2', 't')), 'p', GOOD, id='single-blank-start-event'),
    pytest.param('single-event-definition',
                 bpmn(start() + f'<bpmn:intermediateCatchEvent id="wait" name="等待">{TIMER}'
                      '<bpmn:signalEventDefinition /></bpmn:intermediateCatchEvent>' + end() + line('s', 'wait', 'e')),
                 'wait', bpmn(start() + f'<bpmn:intermediateCatchEvent id="wait" name="等待">{TIMER}'
                              '</bpmn:intermediateCatchEvent>' + end() + line('s', 'wait', 'e')),
                 id='single-event-definition'),
    pytest.param('superfluous-gateway', bpmn(start() + '<bpmn:exclusiveGateway id="g" />' + task() + end()
                                             + line('s', 'g', 't', 'e')), 'g', DECISION, id='superfluous-gateway'),
    pytest.param('sub-process-blank-start-event', _sub_process(TIMER), 'ss', _sub_process(''),
                 id='sub-process-blank-start-event'),
    pytest.param('event-sub-process-typed-start-event', _event_sub_process(''), 'es', _event_sub_process(TIMER),
                 id='event-sub-process-typed-start-event'),
    pytest.param('superfluous-termination', bpmn(start() + task() + end(inner='<bpmn:terminateEventDefinition />')
                                                 + line('s', 't', 'e')), 'e',
                 _parallel(end('e1', '<bpmn:terminateEventDefinition />') + end('e2')), id='superfluous-termination'),
    pytest.param('superfluous-label', bpmn(start() + task() + end() + flow('s', 't', name='提交') + flow('t', 'e')),
                 's_t', DECISION.replace('id="g_e1"', 'id="g_e1" name="同意"'), id='superfluous-label'),
    pytest.param('event-based-gateway', _event_gateway(1), 'eg', _event_gateway(2), id='event-based-gateway'),
    pytest.param('ad-hoc-sub-process', _ad_hoc(start('as') + task('at', '走访')), 'as', _ad_hoc(task('at', '走访')),
                 id='ad-hoc-sub-process'),
    pytest.param('global', bpmn(start() + task() + end() + line('s', 't', 'e'),
                                extra='<bpmn:message id="m1" name="法院回函" />'), 'm1', GOOD, id='global'),
    pytest.param('no-bpmndi', GOOD, None,
                 bpmn(start() + task() + end() + line('s', 't', 'e'),
                      after=diagram(['s', 't', 'e'], ['s_t', 't_e'])), id='no-bpmndi'),
    pytest.param('user-task-assignee', bpmn(start() + task(groups='') + end() + line('s', 't', 'e')), 't',
                 bpmn('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="township_staff"><bpmn:flowNodeRef>t'
                      '</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>' + start() + task(groups='') + end()
                      + line('s', 't', 'e')), id='user-task-assignee'),
    pytest.param('user-task-form', bpmn(start() + task(form=False) + end() + line('s', 't', 'e')), 't',
                 bpmn(start() + task(form=False, attrs='camunda:formKey="agreement"') + end() + line('s', 't', 'e')),
                 id='user-task-form'),
    pytest.param('user-task-deadline', bpmn(start() + task(deadline=None) + end() + line('s', 't', 'e')), 't',
                 bpmn(start() + task(deadline=None, properties='<camunda:property name="clock" value="mediation" />')
                      + end() + line('s', 't', 'e')), id='user-task-deadline'),
    pytest.param('unsupported-element',
                 bpmn(start() + '<bpmn:intermediateThrowEvent id="jump" name="跳转"><bpmn:linkEventDefinition '
                      'name="A" /></bpmn:intermediateThrowEvent>' + end() + line('s', 'jump', 'e')), 'jump', GOOD,
                 id='unsupported-element'),
]


@pytest.mark.parametrize(('rule', 'bad', 'element', 'good'), LINT_CASES)
def test_rule(rule: str, bad: str, element: str | None, good: str) -> None:
    assert RULES[rule].check is not None
    findings = found(bad, rule)
    assert [f.element_id for f in findings] == [element], findings
    if element is not None:
        # The message names the element by its name, else by its id.
        assert (findings[0].element_name or element) in findings[0].message
    assert found(good, rule) == []


def test_unknown_group_is_checked_against_the_roles_given() -> None:
    findings = found(GOOD, 'unknown-group', known_groups=frozenset({'county_officer'}))
    assert [(f.element_id, f.severity) for f in findings] == [('t', WARNING)]
    assert 'township_staff' in findings[0].message
    assert found(GOOD, 'unknown-group', known_groups=frozenset({'township_staff'})) == []
    # No roles known (a fresh installation): nothing to compare with.
    assert found(GOOD, 'unknown-group') == []


def test_unknown_group_covers_lanes_and_escalation() -> None:
    lane = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="司法所"><bpmn:flowNodeRef>t</bpmn:flowNodeRef>'
            '</bpmn:lane></bpmn:laneSet>')
    escalated = task(groups='', properties='<camunda:property name="escalate.to" value="chief" />')
    findings = found(bpmn(lane + start() + escalated + end() + line('s', 't', 'e')), 'unknown-group',
                     known_groups=frozenset({'township_staff'}))
    assert ['司法所' in f.message or 'chief' in f.message for f in findings] == [True, True]


# -- the hard checks of engine.specs, reported in the same list -----------------------------------------------

def _dmn(policy: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="dmn_defs" name="分级">'
            f'<decision id="grade" name="分级"><decisionTable id="table" hitPolicy="{policy}">'
            '<input id="i1"><inputExpression id="ie1"><text>amount</text></inputExpression></input>'
            '<output id="o1" name="grade" />'
            '<rule id="r1"><inputEntry id="r1i"><text>&gt; 100</text></inputEntry>'
            '<outputEntry id="r1o"><text>"high"</text></outputEntry></rule>'
            '</decisionTable></decision></definitions>')


HARD_CASES = [
    pytest.param('parse', 'this is not xml', None, id='parse'),
    pytest.param('schema', bpmn(start() + '<bpmn:bogus id="x" />' + task() + end() + line('s', 't', 'e')), None,
                 id='schema'),
    pytest.param('executable-process', bpmn(start() + task() + end() + line('s', 't', 'e'), executable='false'),
                 None, id='executable-process'),
    pytest.param('unsupported-extension', bpmn(start() + task(attrs='camunda:assignee="wang"') + end()
                                               + line('s', 't', 'e')), 't', id='unsupported-extension'),
    pytest.param('service-task', bpmn(start() + '<bpmn:serviceTask id="svc" name="登记" />' + end()
                                      + line('s', 'svc', 'e')), 'svc', id='service-task'),
    pytest.param('user-task-priority', bpmn(start() + task(attrs='camunda:priority="high"') + end()
                                            + line('s', 't', 'e')), 't', id='user-task-priority'),
    pytest.param('condition-placement', bpmn(start() + task() + end() + flow('s', 't')
                                             + flow('t', 'e', condition='approved')), 't_e', id='condition-placement'),
    pytest.param('expression', DECISION.replace('>approved<', ">__import__('os')<"), 'g_e1', id='expression'),
    pytest.param('timer', bpmn(start() + '<bpmn:intermediateCatchEvent id="wait" name="等待">'
                               '<bpmn:timerEventDefinition><bpmn:timeDuration>P3D</bpmn:timeDuration>'
                               '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>' + end()
                               + line('s', 'wait', 'e')), 'wait', id='timer'),
    pytest.param('decision-ref', bpmn(start() + '<bpmn:businessRuleTask id="rule" name="分级" />' + end()
                                      + line('s', 'rule', 'e')), 'rule', id='decision-ref'),
    pytest.param('call-activity', bpmn(start() + '<bpmn:callActivity id="call" name="调查" calledElement="nowhere" />'
                                       + end() + line('s', 'call', 'e')), 'call', id='call-activity'),
    pytest.param('form', GOOD.replace('<camunda:formData />', '<camunda:formData><camunda:formField id="x" '
                                      'label="金额" type="money" /></camunda:formData>'), 't', id='form'),
    pytest.param('unreachable', bpmn(start() + task() + end() + line('s', 't', 'e') + task('a', '甲') + task('b', '乙')
                                     + flow('a', 'b') + flow('b', 'a')), 'a', id='unreachable'),
    pytest.param('dmn', _dmn('PRIORITY'), 'table', id='dmn'),
    pytest.param('user-task-deadline', bpmn(start() + task(deadline='soon') + end() + line('s', 't', 'e')), 't',
                 id='user-task-deadline-malformed'),
    pytest.param('user-task-assignee', bpmn(start() + task(groups='${group}') + end() + line('s', 't', 'e')), 't',
                 id='user-task-assignee-expression'),
]


@pytest.mark.parametrize(('rule', 'bad', 'element'), HARD_CASES)
def test_hard_check(rule: str, bad: str, element: str | None) -> None:
    result = report(bad)
    findings = [f for f in result.errors if f.rule == rule]
    assert findings, result
    assert all(f.severity == ERROR for f in findings)
    if element is not None:
        assert element in {f.element_id for f in findings}
    assert not result.valid


def test_every_rule_is_tested() -> None:
    tested = {case.values[0] for case in [*LINT_CASES, *HARD_CASES]} | {'unknown-group'}
    assert tested == set(RULES)


def test_a_clean_diagram_has_an_empty_report() -> None:
    source = bpmn(start(name='收到申请') + task() + end(name='办结') + line('s', 't', 'e'),
                  after=diagram(['s', 't', 'e'], ['s_t', 't_e']))
    result = report(source)
    assert result.to_dict() == {'key': 'p', 'kind': 'bpmn', 'name': '测试流程', 'valid': True, 'errors': [],
                                'warnings': []}


def test_finding_to_dict() -> None:
    [finding] = found(bpmn(start() + task(deadline=None) + end() + line('s', 't', 'e')), 'user-task-deadline')
    assert finding.to_dict() == {'rule': 'user-task-deadline', 'severity': 'error', 'element_id': 't',
                                 'element_name': '办理', 'message': finding.message}
    assert '“办理”（t）' in finding.message


def test_superseded_and_repeated_findings_are_dropped() -> None:
    # Disconnected: also unreachable (a hard check) and unsupported by both checks; each said once.
    source = bpmn(start() + task() + end() + line('s', 't', 'e') + '<bpmn:complexGateway id="cg" name="复杂" />')
    result = report(source)
    about = [(f.rule, f.message) for f in result.errors if f.element_id == 'cg']
    assert sorted(rule for rule, _ in about) == ['no-complex-gateway', 'no-disconnected']


def test_every_process_is_checked_when_none_is_executable() -> None:
    result = report(bpmn(start() + task(deadline=None) + end() + line('s', 't', 'e'), executable='false'))
    assert {'executable-process', 'user-task-deadline'} <= {f.rule for f in result.errors}
    assert result.key is None and result.kind == 'bpmn'


@pytest.mark.parametrize('source', [b'', b'\xff\xfe<', '<a>', '<root/>', HEAD + '</bpmn:definitions>',
                                    '<!DOCTYPE x [<!ENTITY y "z">]><x>&y;</x>', 'x' * 100])
def test_garbage_gets_a_report_not_an_exception(source: bytes | str) -> None:
    result = report(source)  # type: ignore[arg-type]
    assert result.errors and not result.valid and result.key is None


def test_a_process_without_its_definitions_is_no_bpmn_document() -> None:
    result = report('<bpmn:process xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="p" />')
    assert result.kind is None and [f.rule for f in result.errors] == ['parse']


def test_labels_with_line_breaks_read_as_one_line() -> None:
    [finding] = found(bpmn(start() + task(deadline=None, name='审核&#10;登记') + end() + line('s', 't', 'e')),
                      'user-task-deadline')
    assert finding.element_name == '审核 登记' and '\n' not in finding.message


# -- our own diagrams ------------------------------------------------------------------------------------------

# Each warning left in a shipped diagram, and why it stays: an exclusive merge drawn straight into a task
# (the branches are alternatives, so only one token ever arrives) and gateways that merge a loop and
# decide in one step.
SHIPPED_WARNINGS = {
    ('leave.bpmn', 'no-gateway-join-fork', 'approved_gateway'),
    ('release.bpmn', 'fake-join', 'check_blocked'),
    ('report.bpmn', 'fake-join', 'schedule_next'),
    ('report.bpmn', 'no-gateway-join-fork', 'reported_gateway'),
    ('residence_change.bpmn', 'fake-join', 'decide'),
    ('residence_change.bpmn', 'fake-join', 'refuse'),
    ('sanction.bpmn', 'fake-join', 'mark_pending'),
}


@pytest.mark.parametrize('path', SHIPPED + SHIPPED_DMN, ids=lambda p: p.name)
def test_shipped_diagrams_have_no_errors(path: Path, registered: None) -> None:
    dmn = [p.read_bytes() for p in SHIPPED_DMN]
    result = report(path.read_bytes(), dmn_sources=dmn, known_groups=None)
    assert result.errors == [], [f.to_dict() for f in result.errors]
    warnings = {(path.name, f.rule, f.element_id) for f in result.warnings}
    assert warnings <= SHIPPED_WARNINGS, warnings - SHIPPED_WARNINGS


@pytest.fixture
def registered() -> None:
    """The domain's service operations and forms, which the shipped diagrams name."""
    import workflows
    workflows.register()


# -- the OMG MIWG reference diagrams ---------------------------------------------------------------------------

def _unsupported(root: etree._Element) -> set[str]:
    """Ids of every flow node in the file the engine cannot run, worked out apart from engine.lint."""
    runnable = supported_flow_nodes()
    ids: set[str] = set()
    for process in root.iter(f'{{{BPMN_NS}}}process'):
        for node in process.iter():
            if not isinstance(node.tag, str) or etree.QName(node).namespace != BPMN_NS:
                continue
            local = etree.QName(node).localname
            parent = node.getparent()
            in_scope = parent is not None and etree.QName(parent).localname in (
                'process', 'subProcess', 'transaction', 'adHocSubProcess')
            allowed = supported_event_definitions(local)
            definitions = {etree.QName(c).localname for c in node if isinstance(c.tag, str)
                           and etree.QName(c).localname.endswith('EventDefinition')}
            if in_scope and ((local in {'complexGateway'} or (local.endswith(('Task', 'Gateway', 'Event'))
                                                               and local not in runnable))
                             or (allowed is not None and definitions - allowed)):
                ids.add(str(node.get('id')))
    return ids


@pytest.mark.parametrize('path', sorted(MIWG.glob('*.bpmn')), ids=lambda p: p.name)
def test_miwg_reference_diagrams_get_a_report_naming_each_unsupported_element(path: Path, session: Session) -> None:
    source = path.read_bytes()
    result = validate(session, source, filename=path.name)
    assert isinstance(result, ValidationReport)
    if result.valid:
        return
    named = {f.element_id for f in result.errors}
    missing = _unsupported(etree.fromstring(source)) - named
    assert not missing, f'unsupported elements not named: {sorted(missing)}'


def test_miwg_reference_diagrams_are_there() -> None:
    assert len(list(MIWG.glob('*.bpmn'))) >= 20
