"""engine.specs: parsing valid definitions, refusing bad ones by element, checksum and SpecCache."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.errors import DeploymentRejected
from engine.lint import RULES
from engine.sandbox import SandboxedScriptEngine
from engine.specs import (
    MAX_SOURCE_BYTES,
    DecisionBundle,
    ProcessBundle,
    SpecCache,
    checksum,
    parse_definition,
)

BPMN_DIR = Path(__file__).parent / 'bpmn'
TWO_LANES = (BPMN_DIR / 'two_lanes.bpmn').read_bytes()
TRIAGE_BPMN = (BPMN_DIR / 'triage_case.bpmn').read_bytes()
TRIAGE_DMN = (BPMN_DIR / 'dmn_triage.dmn').read_bytes()

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
    ' id="defs" targetNamespace="http://fengqiao.example/test">\n'
)


def bpmn(body: str, *, attrs: str = 'isExecutable="true"', process_id: str = 'proc', extra: str = '') -> str:
    """A minimal, schema-valid BPMN document with one process holding ``body``."""
    process = f'<bpmn:process id="{process_id}" {attrs}>\n{body}\n</bpmn:process>\n'
    return f'{HEADER}{process}{extra}</bpmn:definitions>\n'


def line(*nodes: str) -> str:
    """start -> nodes... -> end, connected by flows f0, f1, ...; each node is (id, xml)."""
    ids = ['start', *[n.split('id="', 1)[1].split('"', 1)[0] for n in nodes], 'end']
    flows = ''.join(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>\n'
                    for i, (a, b) in enumerate(zip(ids, ids[1:], strict=False)))
    return '<bpmn:startEvent id="start"/>\n' + '\n'.join(nodes) + '\n<bpmn:endEvent id="end"/>\n' + flows


def gateway(condition: str, *, attrs: str = '') -> str:
    """start -> exclusive gateway -(condition: flow "cond")-> end_a, default -> end_b."""
    return (
        '<bpmn:startEvent id="start"/>\n'
        '<bpmn:exclusiveGateway id="gw" default="dflt"/>\n'
        '<bpmn:endEvent id="end_a"/><bpmn:endEvent id="end_b"/>\n'
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="gw"/>\n'
        '<bpmn:sequenceFlow id="cond" sourceRef="gw" targetRef="end_a">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"{attrs}>'
        f'{condition}</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow>\n'
        '<bpmn:sequenceFlow id="dflt" sourceRef="gw" targetRef="end_b"/>\n'
    )


def timer(kind: str, text: str) -> str:
    return line(f'<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="td">'
                f'<bpmn:{kind} xsi:type="bpmn:tFormalExpression">{text}</bpmn:{kind}>'
                f'</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')


def rejected(source: bytes | str, dmn_sources: Sequence[bytes] = ()) -> list[dict[str, Any]]:
    """Parse ``source`` expecting a refusal; return its problems after checking their shape."""
    with pytest.raises(DeploymentRejected) as caught:
        parse_definition(source, dmn_sources=dmn_sources)
    assert caught.value.message == '流程定义未通过校验'
    problems = caught.value.problems
    assert problems
    for problem in problems:
        assert set(problem) == {'element', 'message', 'rule'}
        assert isinstance(problem['message'], str) and problem['message']
        assert problem['rule'] in RULES  # every hard check reports under a described rule
    return problems


def elements(problems: list[dict[str, Any]]) -> set[str | None]:
    return {problem['element'] for problem in problems}


def messages(problems: list[dict[str, Any]], element: str | None) -> str:
    return '\n'.join(p['message'] for p in problems if p['element'] == element)


def process_bundle(source: bytes | str, dmn_sources: Sequence[bytes] = ()) -> ProcessBundle:
    bundle = parse_definition(source, dmn_sources=dmn_sources)
    assert isinstance(bundle, ProcessBundle)
    return bundle


def ready_user_tasks(workflow: BpmnWorkflow) -> list[str]:
    return [task.task_spec.bpmn_id for task in workflow.get_tasks(state=TaskState.READY, manual=True)]


# -- valid definitions ------------------------------------------------------------------------


def test_two_lanes_process() -> None:
    bundle = process_bundle(TWO_LANES)

    assert bundle.key == 'two_lanes'
    assert bundle.name == '调解案件登记与审核'
    assert bundle.documentation == '乡镇司法所登记调解申请，金额较大的案件报县司法局审核。'
    assert bundle.spec.name == 'two_lanes'
    assert bundle.subprocess_specs == {}
    assert list(bundle.user_tasks) == ['register', 'review']

    register = bundle.user_tasks['register']
    assert register.bpmn_id == 'register'
    assert register.title == '登记申请'
    assert register.lane == 'township_staff'
    assert register.candidate_groups == ('township_staff',)  # from the lane
    assert register.documentation == '核对申请人身份并登记纠纷基本情况。'
    assert register.properties == {'deadline': 'P3D', 'calendar': 'workdays'}
    assert register.process_id == 'two_lanes'

    review = bundle.user_tasks['review']
    assert review.lane == 'county_staff'
    assert review.candidate_groups == ('county_officer',)  # the attribute wins over the lane
    assert review.documentation is None
    assert review.properties == {}


def test_two_lanes_forms() -> None:
    bundle = process_bundle(TWO_LANES)

    form = bundle.user_tasks['register'].form
    assert form.key == 'register_form'
    fields = {field.id: field for field in form.fields}
    assert [field.id for field in form.fields] == [
        'applicant_name', 'claim_amount', 'category', 'incident_date', 'urgent']
    assert [field.type for field in form.fields] == ['string', 'long', 'enum', 'date', 'boolean']
    assert fields['applicant_name'].required and fields['applicant_name'].min_length == 2
    assert fields['applicant_name'].label == '申请人姓名'
    assert fields['claim_amount'].minimum == 0 and not fields['claim_amount'].required
    assert fields['category'].options == (
        ('medical', '医疗纠纷'), ('neighbour', '邻里纠纷'), ('other', '其他'))
    assert fields['urgent'].default == 'false'

    assert [field.id for field in bundle.user_tasks['review'].form.fields] == ['approved', 'opinion']

    assert bundle.start_form is not None
    assert bundle.start_form.key == 'start_form'
    assert [(f.id, f.required) for f in bundle.start_form.fields] == [('case_title', True)]


def test_two_lanes_runs_in_the_sandbox() -> None:
    # The gateway condition that passed deployment checks also evaluates under the runtime engine.
    bundle = process_bundle(TWO_LANES)
    for amount, expected in ((200_000, ['review']), (5_000, [])):
        workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=SandboxedScriptEngine())
        workflow.do_engine_steps()
        assert ready_user_tasks(workflow) == ['register']
        task = workflow.get_tasks(state=TaskState.READY, manual=True)[0]
        task.data.update(applicant_name='张三', claim_amount=amount)
        task.run()
        workflow.do_engine_steps()
        assert ready_user_tasks(workflow) == expected


def test_str_and_bytes_sources_parse_alike() -> None:
    from_bytes = process_bundle(TWO_LANES)
    from_str = process_bundle(TWO_LANES.decode('utf-8'))
    assert from_str.key == from_bytes.key
    assert list(from_str.user_tasks) == list(from_bytes.user_tasks)


def test_process_without_name_uses_pool_name_then_key() -> None:
    pool = ('<bpmn:collaboration id="collab"><bpmn:participant id="pool" name="泳池名称" processRef="proc"/>'
            '</bpmn:collaboration>\n')
    source = bpmn(line()).replace('<bpmn:process', pool + '<bpmn:process')
    assert process_bundle(source).name == '泳池名称'
    assert process_bundle(bpmn(line())).name == 'proc'


def test_decision_table() -> None:
    bundle = parse_definition(TRIAGE_DMN)
    assert bundle == DecisionBundle(key='dmn_triage', name='纠纷分级', decision_ids=('dispute_triage',))


def test_business_rule_task_with_deployed_decision() -> None:
    bundle = process_bundle(TRIAGE_BPMN, [TRIAGE_DMN])
    assert bundle.key == 'triage_case'
    assert bundle.name == '纠纷分级办理'
    assert bundle.user_tasks['county_review'].candidate_groups == ('county_officer', 'county_lead')
    assert bundle.user_tasks['county_review'].lane is None
    assert bundle.user_tasks['township_review'].candidate_groups == ('township_staff',)
    assert bundle.user_tasks['township_review'].form.fields == ()
    assert bundle.start_form is None
    assert bundle.documentation is None


@pytest.mark.parametrize(('amount', 'category', 'expected'), [
    (200_000, 'other', 'county_review'),
    (5_000, 'medical', 'township_review'),
    (5_000, 'neighbour', 'township_review'),
])
def test_decision_cells_evaluate_in_the_sandbox(amount: int, category: str, expected: str) -> None:
    # Every cell form the validator rebuilds (plain value, "> x", "a <= ? <= b", "!= x") runs for real.
    bundle = process_bundle(TRIAGE_BPMN, [TRIAGE_DMN])
    workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=SandboxedScriptEngine())
    workflow.task_tree.data.update(claim_amount=amount, category=category)
    workflow.do_engine_steps()
    assert ready_user_tasks(workflow) == [expected]


def test_called_process_and_embedded_subprocess() -> None:
    caller = line(
        '<bpmn:callActivity id="call" calledElement="helper"/>',
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s2"/><bpmn:userTask id="inner" name="内部任务"/>'
        '<bpmn:endEvent id="e2"/><bpmn:sequenceFlow id="g1" sourceRef="s2" targetRef="inner"/>'
        '<bpmn:sequenceFlow id="g2" sourceRef="inner" targetRef="e2"/></bpmn:subProcess>',
    )
    lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="lane_a" name="township_staff">'
             '<bpmn:flowNodeRef>sub</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n')
    helper = ('<bpmn:process id="helper" isExecutable="true"><bpmn:startEvent id="hs"/>'
              '<bpmn:userTask id="helper_task" camunda:candidateGroups="county_officer"/>'
              '<bpmn:endEvent id="he"/><bpmn:sequenceFlow id="h1" sourceRef="hs" targetRef="helper_task"/>'
              '<bpmn:sequenceFlow id="h2" sourceRef="helper_task" targetRef="he"/></bpmn:process>\n')
    bundle = process_bundle(bpmn(lanes + caller, extra=helper))

    # The called process is executable too, but it is called, so it is not the definition key.
    assert bundle.key == 'proc'
    assert set(bundle.subprocess_specs) == {'helper', 'sub'}
    assert bundle.user_tasks['inner'].process_id == 'sub'
    assert bundle.user_tasks['inner'].lane == 'township_staff'  # the subprocess's lane
    assert bundle.user_tasks['inner'].candidate_groups == ('township_staff',)
    assert bundle.user_tasks['inner'].title == '内部任务'
    assert bundle.user_tasks['helper_task'].process_id == 'helper'
    assert bundle.user_tasks['helper_task'].title == 'helper_task'
    assert bundle.user_tasks['helper_task'].candidate_groups == ('county_officer',)


def test_bpmn_js_correlation_properties_pass_the_schema() -> None:
    # bpmn-js writes formalExpression where the schema wants messagePath; SpiffWorkflow tolerates it.
    declarations = (
        '<bpmn:message id="msg1" name="reply"/>'
        '<bpmn:correlationProperty id="case_no" name="案件号">'
        '<bpmn:correlationPropertyRetrievalExpression messageRef="msg1">'
        '<bpmn:formalExpression>case_no</bpmn:formalExpression>'
        '</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>\n')
    body = line('<bpmn:intermediateCatchEvent id="wait">'
                '<bpmn:messageEventDefinition id="md" messageRef="msg1"/></bpmn:intermediateCatchEvent>')
    bundle = process_bundle(bpmn(body).replace('<bpmn:process', declarations + '<bpmn:process'))
    assert 'wait' in bundle.spec.task_specs


def test_valid_timers_are_accepted() -> None:
    process_bundle(bpmn(timer('timeDuration', '"PT1H"')))
    process_bundle(bpmn(timer('timeDate', '"2030-01-01T09:00:00+08:00"')))
    process_bundle(bpmn(timer('timeCycle', '"R3/PT10M"')))
    process_bundle(bpmn(timer('timeDuration', 'review_period')))  # an expression: checked at run time


# -- refused: not a definition at all ---------------------------------------------------------


def test_not_xml() -> None:
    problems = rejected(b'this is not xml')
    assert problems[0]['element'] is None
    assert problems[0]['message'].startswith('不是有效的 XML：')
    assert 'line 1' in problems[0]['message']


def test_malformed_xml_names_the_line() -> None:
    problems = rejected(bpmn(line()).replace('</bpmn:process>', ''))
    assert 'line' in problems[0]['message']


@pytest.mark.parametrize('source', [b'', b'   \n  ', ''])
def test_empty(source: bytes | str) -> None:
    assert rejected(source) == [{'element': None, 'message': '文件为空。', 'rule': 'parse'}]


def test_xxe() -> None:
    source = (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
              + bpmn(line('<bpmn:task id="t" name="&e;"/>')).split('\n', 1)[1].encode())
    problems = rejected(source)
    assert len(problems) == 1
    assert 'DOCTYPE' in problems[0]['message']
    assert 'root:' not in problems[0]['message']


def test_billion_laughs() -> None:
    entities = '<!ENTITY lol "lol">' + ''.join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    source = f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]><lolz>&lol9;</lolz>'
    problems = rejected(source)
    assert 'DOCTYPE' in problems[0]['message']


def test_doctype_in_utf16() -> None:
    source = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>'
    assert 'DOCTYPE' in rejected(source.encode('utf-16'))[0]['message']


@pytest.mark.parametrize('source', [
    '<html><body>hello</body></html>',
    '<bpmn:process xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="p"/>',
    '<definitions xmlns="http://example.com/not-bpmn" id="d"/>',
])
def test_wrong_root(source: str) -> None:
    problems = rejected(source)
    assert len(problems) == 1
    assert '根元素' in problems[0]['message']


def test_oversize_source() -> None:
    padding = '<!-- ' + 'x' * MAX_SOURCE_BYTES + ' -->'
    problems = rejected(bpmn(line()).replace('<bpmn:process', padding + '<bpmn:process'))
    assert '文件过大' in problems[0]['message']
    assert str(MAX_SOURCE_BYTES) in problems[0]['message']


# -- refused: which process ---------------------------------------------------------------------


@pytest.mark.parametrize('attrs', ['isExecutable="false"', ''])
def test_no_executable_process(attrs: str) -> None:
    problems = rejected(bpmn(line(), attrs=attrs))
    assert elements(problems) == {None}
    assert problems[0]['message'] == '没有可执行的流程：请在流程上设置 isExecutable="true"。'


def test_two_uncalled_executable_processes() -> None:
    other = ('<bpmn:process id="other" isExecutable="true"><bpmn:startEvent id="s2"/><bpmn:endEvent id="e2"/>'
             '<bpmn:sequenceFlow id="g1" sourceRef="s2" targetRef="e2"/></bpmn:process>\n')
    problems = rejected(bpmn(line(), extra=other))
    assert elements(problems) == {'proc', 'other'}
    assert '无法确定主流程' in problems[0]['message']


# -- refused: elements the engine would not run -------------------------------------------------


def test_connected_complex_gateway() -> None:
    problems = rejected(bpmn(line('<bpmn:complexGateway id="cg"/>')))
    assert elements(problems) == {'cg'}
    assert 'bpmn:complexGateway' in messages(problems, 'cg')


def test_unconnected_complex_gateway() -> None:
    # SpiffWorkflow on its own parses this without complaint and just leaves the gateway out.
    problems = rejected(bpmn(line() + '<bpmn:complexGateway id="floating"/>'))
    assert elements(problems) == {'floating'}
    assert 'bpmn:complexGateway' in messages(problems, 'floating')


def test_unconnected_user_task() -> None:
    problems = rejected(bpmn(line() + '<bpmn:userTask id="lonely" name="孤立任务"/>'))
    assert elements(problems) == {'lonely'}
    assert '孤立任务' in messages(problems, 'lonely')


def test_link_event_would_silently_become_a_none_event() -> None:
    event = ('<bpmn:intermediateThrowEvent id="link">'
             '<bpmn:linkEventDefinition id="ld" name="goto"/></bpmn:intermediateThrowEvent>')
    problems = rejected(bpmn(line(event)))
    assert elements(problems) == {'link'}
    assert 'bpmn:linkEventDefinition' in messages(problems, 'link')


def test_java_service_task_is_refused() -> None:
    problems = rejected(bpmn(line('<bpmn:serviceTask id="svc" camunda:class="com.example.Foo"/>')))
    assert elements(problems) == {'svc'}
    assert 'camunda:topic' in messages(problems, 'svc')
    assert 'camunda:class' in messages(problems, 'svc')


def test_service_task_with_unregistered_topic_is_refused() -> None:
    problems = rejected(bpmn(line('<bpmn:serviceTask id="svc" camunda:type="external" camunda:topic="no.such"/>')))
    assert elements(problems) == {'svc'}
    assert 'no.such' in messages(problems, 'svc')


def test_service_task_with_registered_topic_parses() -> None:
    from engine.services import ServiceCallTask, service

    service('tests.noop')(lambda context, data: None)
    task = '<bpmn:serviceTask id="svc" camunda:type="external" camunda:topic="tests.noop"/>'
    bundle = parse_definition(bpmn(line(task)))
    assert isinstance(bundle, ProcessBundle)
    task_spec = bundle.spec.task_specs['svc']
    assert isinstance(task_spec, ServiceCallTask) and task_spec.topic == 'tests.noop'


def test_ignored_camunda_extensions() -> None:
    task = ('<bpmn:userTask id="ut" camunda:assignee="zhangsan"><bpmn:extensionElements>'
            '<camunda:taskListener event="create" class="com.example.Notify"/>'
            '</bpmn:extensionElements></bpmn:userTask>')
    problems = rejected(bpmn(line(task), attrs='isExecutable="true" camunda:candidateStarterGroups="admin"'))
    assert elements(problems) == {'ut', 'proc'}
    assert 'camunda:assignee' in messages(problems, 'ut')
    assert 'camunda:taskListener' in messages(problems, 'ut')
    assert 'camunda:candidateStarterGroups' in messages(problems, 'proc')


def test_camunda_8_extensions() -> None:
    task = ('<bpmn:userTask id="ut"><bpmn:extensionElements xmlns:zeebe="http://camunda.org/schema/zeebe/1.0">'
            '<zeebe:assignmentDefinition candidateGroups="county_officer"/>'
            '</bpmn:extensionElements></bpmn:userTask>')
    problems = rejected(bpmn(line(task)))
    assert elements(problems) == {'ut'}
    assert 'zeebe:assignmentDefinition' in messages(problems, 'ut')


def test_duplicate_ids_fail_the_schema() -> None:
    problems = rejected(bpmn(line('<bpmn:task id="start"/>')))
    assert 'start' in elements(problems)
    assert 'BPMN 2.0 XML' in messages(problems, 'start')


# -- refused: expressions and scripts ---------------------------------------------------------


def test_condition_syntax_error() -> None:
    problems = rejected(bpmn(gateway('amount &gt;&gt; &gt; 1')))
    assert elements(problems) == {'cond'}
    assert '语法错误' in messages(problems, 'cond')


def test_condition_import() -> None:
    problems = rejected(bpmn(gateway("__import__('os').system('id')")))
    assert elements(problems) == {'cond'}
    assert '条件表达式未通过检查' in messages(problems, 'cond')


def test_condition_in_juel() -> None:
    problems = rejected(bpmn(gateway('${amount &gt; 1}')))
    assert elements(problems) == {'cond'}
    assert '${…}' in messages(problems, 'cond')


def test_condition_in_another_language() -> None:
    problems = rejected(bpmn(gateway('amount &gt; 1', attrs=' language="groovy"')))
    assert elements(problems) == {'cond'}
    assert 'groovy' in messages(problems, 'cond')


def test_condition_on_a_flow_leaving_a_task() -> None:
    body = line('<bpmn:task id="t"/>').replace(
        '<bpmn:sequenceFlow id="f1" sourceRef="t" targetRef="end"/>',
        '<bpmn:sequenceFlow id="f1" sourceRef="t" targetRef="end">'
        '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">x &gt; 1</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow>')
    problems = rejected(bpmn(body))
    assert elements(problems) == {'f1'}


def test_script_task_import() -> None:
    problems = rejected(bpmn(line('<bpmn:scriptTask id="st" scriptFormat="python">'
                                  '<bpmn:script>import os\nos.system("id")</bpmn:script></bpmn:scriptTask>')))
    assert elements(problems) == {'st'}
    assert '导入' in messages(problems, 'st')


def test_script_task_in_groovy() -> None:
    problems = rejected(bpmn(line('<bpmn:scriptTask id="st" scriptFormat="groovy">'
                                  '<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>')))
    assert elements(problems) == {'st'}


@pytest.mark.parametrize(('kind', 'text', 'hint'), [
    ('timeDuration', '"P3D" +', '语法错误'),
    ('timeDuration', "__import__('os')", '未通过检查'),
    ('timeDuration', 'P3D', '须加引号'),
    ('timeDate', '2030-01-01', '须加引号'),
    ('timeDuration', '"P3X"', 'ISO 8601'),
    ('timeDate', '"P3D"', 'ISO 8601'),
    ('timeCycle', '"every day"', 'ISO 8601'),
])
def test_bad_timer(kind: str, text: str, hint: str) -> None:
    problems = rejected(bpmn(timer(kind, text)))
    assert elements(problems) == {'wait'}
    assert hint in messages(problems, 'wait')


def test_all_problems_are_reported_at_once() -> None:
    body = gateway("__import__('os')").replace(
        '<bpmn:endEvent id="end_a"/>',
        '<bpmn:endEvent id="end_a"/><bpmn:complexGateway id="floating"/>')
    problems = rejected(bpmn(body))
    assert elements(problems) == {'cond', 'floating'}


# -- refused: references and forms ------------------------------------------------------------


def test_unresolved_decision_ref() -> None:
    problems = rejected(bpmn(line('<bpmn:businessRuleTask id="brt" camunda:decisionRef="nowhere"/>')),
                        [TRIAGE_DMN])
    assert elements(problems) == {'brt'}
    assert 'nowhere' in messages(problems, 'brt')
    assert 'dispute_triage' in messages(problems, 'brt')  # lists what is deployed


def test_missing_decision_ref() -> None:
    problems = rejected(bpmn(line('<bpmn:businessRuleTask id="brt"/>')))
    assert elements(problems) == {'brt'}


def test_decision_ref_without_deployed_decisions() -> None:
    assert elements(rejected(TRIAGE_BPMN)) == {'triage'}


def test_unresolved_call_activity() -> None:
    problems = rejected(bpmn(line('<bpmn:callActivity id="call" calledElement="missing_process"/>')))
    assert elements(problems) == {'call'}
    assert 'missing_process' in messages(problems, 'call')


def test_bad_form_field_type() -> None:
    task = ('<bpmn:userTask id="ut"><bpmn:extensionElements><camunda:formData>'
            '<camunda:formField id="photo" label="照片" type="file"/>'
            '</camunda:formData></bpmn:extensionElements></bpmn:userTask>')
    problems = rejected(bpmn(line(task)))
    assert elements(problems) == {'ut'}
    assert 'file' in messages(problems, 'ut')
    assert 'photo' in messages(problems, 'ut')


def test_form_where_it_would_not_be_shown() -> None:
    task = '<bpmn:manualTask id="mt" camunda:formKey="never_shown"/>'
    assert elements(rejected(bpmn(line(task)))) == {'mt'}


# -- refused: DMN -----------------------------------------------------------------------------


def dmn_with(cell: str) -> bytes:
    return TRIAGE_DMN.replace(b'<text>"medical"</text>', cell.encode())


def test_malicious_decision_cell() -> None:
    problems = rejected(dmn_with("<text>__import__('os').system('x')</text>"))
    assert elements(problems) == {'entry_medical_category'}


def test_malicious_decision_output() -> None:
    problems = rejected(TRIAGE_DMN.replace(b'<text>"county"</text>', b"<text>open('/etc/passwd')</text>"))
    assert elements(problems) == {'out_big'}


def test_unsupported_hit_policy() -> None:
    problems = rejected(TRIAGE_DMN.replace(b'hitPolicy="UNIQUE"', b'hitPolicy="PRIORITY"'))
    assert elements(problems) == {'DecisionTable_triage'}


def test_several_decisions_in_one_file() -> None:
    second = (b'<decision id="second" name="x">'
              b'<literalExpression id="le"><text>1</text></literalExpression></decision>')
    problems = rejected(TRIAGE_DMN.replace(b'<dmndi:DMNDI>', second + b'<dmndi:DMNDI>'))
    assert 'second' in elements(problems)


# -- checksum ---------------------------------------------------------------------------------


def test_checksum() -> None:
    digest = checksum(TWO_LANES)
    assert digest == hashlib.sha256(TWO_LANES).hexdigest()
    assert len(digest) == 64
    assert checksum(TWO_LANES) == digest
    assert checksum(TWO_LANES.decode('utf-8')) == digest
    # Exact bytes: even trailing whitespace makes another version.
    assert checksum(TWO_LANES + b'\n') != digest


# -- SpecCache --------------------------------------------------------------------------------


class CountingLoader:
    def __init__(self, source: bytes, dmn_sources: Sequence[bytes] = (), delay: float = 0.0) -> None:
        self.source, self.dmn_sources, self.delay = source, list(dmn_sources), delay
        self.calls = 0

    def __call__(self) -> tuple[bytes, list[bytes]]:
        self.calls += 1
        time.sleep(self.delay)
        return self.source, self.dmn_sources


def test_cache_parses_once() -> None:
    cache = SpecCache()
    loader = CountingLoader(TWO_LANES)
    first = cache.get_or_parse(1, loader)
    second = cache.get_or_parse(1, loader)
    assert second is first
    assert loader.calls == 1
    assert isinstance(first, ProcessBundle) and first.key == 'two_lanes'
    assert 1 in cache and len(cache) == 1


def test_cache_evicts_least_recently_used() -> None:
    cache = SpecCache(maxsize=2)
    loaders = {def_id: CountingLoader(TRIAGE_DMN) for def_id in (1, 2, 3)}
    cache.get_or_parse(1, loaders[1])
    cache.get_or_parse(2, loaders[2])
    cache.get_or_parse(1, loaders[1])  # 1 is now the most recently used
    cache.get_or_parse(3, loaders[3])  # evicts 2
    assert 2 not in cache and 1 in cache and 3 in cache
    cache.get_or_parse(2, loaders[2])
    assert loaders[2].calls == 2
    assert loaders[1].calls == 1


def test_cache_parses_once_under_concurrency() -> None:
    cache = SpecCache()
    loader = CountingLoader(TRIAGE_BPMN, [TRIAGE_DMN], delay=0.05)
    results: list[object] = []

    def worker() -> None:
        results.append(cache.get_or_parse(7, loader))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loader.calls == 1
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_cache_does_not_keep_failures() -> None:
    cache = SpecCache()
    bad = CountingLoader(b'not xml')
    with pytest.raises(DeploymentRejected):
        cache.get_or_parse(5, bad)
    assert 5 not in cache
    with pytest.raises(DeploymentRejected):
        cache.get_or_parse(5, bad)
    assert bad.calls == 2


def test_cache_invalidate_and_clear() -> None:
    cache = SpecCache()
    loader = CountingLoader(TRIAGE_DMN)
    cache.get_or_parse(1, loader)
    cache.invalidate(1)
    assert 1 not in cache
    cache.get_or_parse(1, loader)
    cache.clear()
    assert len(cache) == 0
    assert loader.calls == 2
