"""Tests for engine.sandbox: what designer scripts may and may not do."""

from __future__ import annotations

import sys
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState

from engine.errors import ScriptRefused
from engine.sandbox import (
    SandboxedEnvironment,
    SandboxedScriptEngine,
    ScriptSyntaxError,
    check_expression,
    check_script,
    compile_expression,
    compile_script,
    find_script_refused,
    register_helper,
    register_service,
    unregister_helper,
    unregister_service,
)

GUARD_NAMES = {
    '__builtins__', '_getattr_', '_getitem_', '_getiter_', '_write_', '_iter_unpack_sequence_',
    '_unpack_sequence_', '_inplacevar_', '_apply_', '_print_', '_print', '_pow_', '_mul_', '_lshift_', '_loop_',
    '__import__',
}


def run(script: str, data: dict[str, Any] | None = None, limit: float = 1.0) -> dict[str, Any]:
    context = dict(data or {})
    SandboxedEnvironment(cpu_time_limit=limit).execute(script, context)
    return context


def refuse(script: str, context: dict[str, Any], limit: float = 1.0) -> ScriptRefused:
    with pytest.raises(ScriptRefused) as info:
        SandboxedEnvironment(cpu_time_limit=limit).execute(script, context)
    return info.value


def evaluate(expression: str, data: dict[str, Any] | None = None) -> Any:
    return SandboxedEnvironment().evaluate(expression, data or {})


# --- refusals -------------------------------------------------------------------------------------

def test_import_is_refused_and_nothing_is_imported() -> None:
    context: dict[str, Any] = {'case': 1}
    error = refuse('import os\nhome = os.getcwd()', context)
    assert '不允许导入模块' in error.message
    assert context == {'case': 1}


def test_from_import_is_refused() -> None:
    context: dict[str, Any] = {}
    refuse('from os import path\np = path.sep', context)
    assert context == {}


def test_open_is_refused_and_no_file_is_written(tmp_path: Path) -> None:
    target = tmp_path / 'leak.txt'
    context: dict[str, Any] = {'target': str(target)}
    refuse("open(target, 'w').write('x')", context)
    assert not target.exists()
    context = {}
    error = refuse("secret = open('/etc/passwd').read()", context)
    assert 'open()' in error.message
    assert 'secret' not in context


def test_dunder_import_is_refused() -> None:
    context: dict[str, Any] = {}
    refuse("m = __import__('os')", context)
    assert context == {}


def test_subclasses_walk_is_refused() -> None:
    context: dict[str, Any] = {}
    error = refuse('classes = ().__class__.__base__.__subclasses__()', context)
    assert '__class__' in error.message
    assert context == {}


def test_getattr_builtin_is_refused() -> None:
    context: dict[str, Any] = {}
    refuse("c = getattr(1, '__class__')", context)
    assert context == {}


def test_format_string_attribute_walk_is_refused() -> None:
    context: dict[str, Any] = {'template': '{0.__class__}'}
    error = refuse('leak = template.format(1)', context)
    assert 'format' in error.message
    assert 'leak' not in context
    with pytest.raises(ScriptRefused):
        evaluate('"{0.__class__}".format(1)')
    with pytest.raises(ScriptRefused):
        evaluate("'{x.__class__}'.format_map({'x': 1})")
    with pytest.raises(ScriptRefused):
        evaluate("str.format('{0.__class__}', 1)")


def test_dunder_attribute_is_refused() -> None:
    context: dict[str, Any] = {}
    refuse('x = [].__class__', context)
    assert context == {}


@pytest.mark.parametrize('script', [
    'f = lambda: 0\ng = f.__globals__',
    'def f():\n    return 1\ng = f.__globals__',
    'def f():\n    return 1\ng = f.__code__',
    'g = (i for i in [1]).gi_frame',
])
def test_function_internals_are_refused(script: str) -> None:
    context: dict[str, Any] = {}
    refuse(script, context)
    assert context == {}


def test_type_is_refused() -> None:
    context: dict[str, Any] = {}
    refuse('t = type(1)', context)
    assert context == {}


def test_class_statement_is_refused() -> None:
    context: dict[str, Any] = {}
    error = refuse('class A:\n    pass', context)
    assert '不允许定义类' in error.message
    assert context == {}


def test_eval_and_exec_are_refused() -> None:
    context: dict[str, Any] = {}
    refuse("y = eval('1')", context)
    refuse("exec('x=1')", context)
    assert context == {}


def test_mro_is_refused() -> None:
    context: dict[str, Any] = {}
    refuse('bases = ValueError.mro()', context)
    assert context == {}


@pytest.mark.parametrize('script', [
    'try:\n    x = 1\nexcept:\n    pass',
    'try:\n    x = 1\nfinally:\n    pass',
    'try:\n    x = 1\nexcept [ValueError][0]:\n    pass',
    'with x:\n    pass',
])
def test_constructs_that_could_swallow_the_limit_are_refused(script: str) -> None:
    context: dict[str, Any] = {}
    refuse(script, context)
    assert context == {}


def test_endless_loop_is_stopped_by_the_cpu_limit() -> None:
    context: dict[str, Any] = {'n': 0}
    started = time.thread_time()
    error = refuse('while True:\n    pass', context, limit=0.2)
    spent = time.thread_time() - started
    assert error.message == '脚本运行超时 (超过 0.2 秒 CPU 时间)'
    assert 0.19 <= spent < 1.0
    assert context == {'n': 0}


def test_endless_loop_in_an_expression_is_stopped() -> None:
    env = SandboxedEnvironment(cpu_time_limit=0.2)
    with pytest.raises(ScriptRefused, match='超时'):
        env.evaluate('sum(1 for a in range(10**6) for b in range(10**6))', {})


def test_cpu_limit_cannot_be_caught_by_the_script() -> None:
    context: dict[str, Any] = {}
    script = 'while True:\n    try:\n        while True:\n            pass\n    except Exception:\n        caught = 1\n'
    refuse(script, context, limit=0.2)
    assert 'caught' not in context


def test_cpu_limit_works_outside_the_main_thread() -> None:
    outcome: list[BaseException | None] = []

    def worker() -> None:
        try:
            run('while True:\n    pass', limit=0.2)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ScriptRefused)


def test_previous_trace_function_is_restored() -> None:
    original = sys.gettrace()

    def outer_tracer(frame: Any, event: str, arg: Any) -> None:
        return None

    sys.settrace(outer_tracer)
    try:
        evaluate('1 + 1')
        with pytest.raises(ScriptRefused):
            run('while True:\n    pass', limit=0.1)
        assert sys.gettrace() is outer_tracer
    finally:
        sys.settrace(original)


def test_huge_power_is_refused_quickly() -> None:
    context: dict[str, Any] = {}
    started = time.thread_time()
    error = refuse('x = 2 ** 10 ** 8', context)
    assert time.thread_time() - started < 0.5
    assert '乘方' in error.message
    assert context == {}
    refuse('x = 3\nx **= 10 ** 6', {})


def test_huge_repetition_is_refused_quickly() -> None:
    started = time.thread_time()
    for script in ("x = 'a' * 10**9", 'x = [0] * 10**9', 'x = 10**9 * (0,)'):
        context: dict[str, Any] = {}
        error = refuse(script, context)
        assert '重复结果过长' in error.message
        assert context == {}
    context = {}
    refuse("x = 'a'\nx *= 10**9", context)
    assert context == {'x': 'a'}
    assert time.thread_time() - started < 0.5


def test_other_c_level_blowups_are_refused() -> None:
    refuse('x = 1 << 10**7', {})
    refuse('x = sum(range(10**12))', {})
    refuse('x = sum([[1]] * 10, [])', {})


def test_refusal_comes_before_any_statement_runs() -> None:
    context: dict[str, Any] = {}
    refuse('done = 1\nimport os', context)
    assert context == {}


def test_check_functions_refuse_without_running() -> None:
    check_expression("x > 5 and y == 'red'")
    check_script('total = a + b')
    with pytest.raises(ScriptRefused, match='Line 2'):
        check_script('x = 1\nimport os')
    with pytest.raises(ScriptRefused, match='__class__'):
        check_expression('x.__class__')
    with pytest.raises(ScriptRefused):
        check_expression('x = 1')
    with pytest.raises(ScriptSyntaxError) as info:
        check_script('if x\n    pass')
    assert isinstance(info.value, SyntaxError) and isinstance(info.value, ScriptRefused)


def test_engine_validate_keeps_syntax_error_semantics_for_dmn() -> None:
    engine = SandboxedScriptEngine()
    engine.validate('x < 5')
    with pytest.raises(SyntaxError):
        engine.validate('< 5')
    with pytest.raises(ScriptRefused, match='不允许调用 open'):
        engine.validate("open('x')")


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ScriptRefused, match='未注册的服务操作'):
        SandboxedEnvironment().call_service({}, operation_name='missing.op', operation_params={})


def test_reserved_names_in_task_data_are_refused() -> None:
    with pytest.raises(ScriptRefused, match='保留名称'):
        evaluate('1', {'_getattr_': 'x'})


# --- what scripts can do --------------------------------------------------------------------------

def test_arithmetic_and_comparisons() -> None:
    assert evaluate('(1 + 2) * 3 - 4 / 2') == 7.0
    assert evaluate('7 // 2 == 3 and 7 % 2 == 1 and 2 ** 10 == 1024')
    assert evaluate('1 < x <= 3', {'x': 3})
    assert evaluate("'a' * 3 + 'b'") == 'aaab'


@pytest.mark.parametrize(('x', 'y', 'expected'), [(6, 'red', True), (5, 'red', False), (9, 'blue', False)])
def test_condition_over_task_data(x: int, y: str, expected: bool) -> None:
    assert evaluate("x > 5 and y == 'red'", {'x': x, 'y': y}) is expected


def test_expression_with_xml_indentation() -> None:
    assert evaluate('\n        x > 5\n    ', {'x': 6}) is True


def test_assignments_become_task_data() -> None:
    context = run("total = price * qty\nlabel = f'{qty} 件'", {'price': 3, 'qty': 4})
    assert context == {'price': 3, 'qty': 4, 'total': 12, 'label': '4 件'}


def test_dates_and_decimals() -> None:
    assert evaluate('date(2025, 9, 26) + timedelta(days=10)') == date(2025, 10, 6)
    assert evaluate("Decimal('1.50') * 2") == Decimal('3.00')
    assert evaluate("datetime(2025, 1, 1, 8).strftime('%H:%M')") == '08:00'
    assert evaluate("f'{d:%Y年%m月%d日}'", {'d': date(2025, 9, 26)}) == '2025年09月26日'
    assert evaluate("datetime.strptime('2025-09-26', '%Y-%m-%d').date()") == date(2025, 9, 26)
    assert isinstance(evaluate('date.today()'), date)


def test_import_hook_for_datetime_internals_serves_nothing_else() -> None:
    # C code in datetime imports ``time`` through the sandbox builtins; nothing else may come through.
    from engine import sandbox

    hook = sandbox._builtins['__import__']
    assert hook('time').__name__ == 'time'
    for name in ('os', 'sys', 'builtins', 'importlib'):
        with pytest.raises(ScriptRefused):
            hook(name)


def test_augmented_assignment() -> None:
    context = run("n = 1\nn += 2\nn *= 5\nn -= 1\ns = 'a'\ns += 'b'\nitems = [1]\nitems += [2]\nf = 1.5\nf /= 3")
    assert context == {'n': 14, 's': 'ab', 'items': [1, 2], 'f': 0.5}


def test_comprehensions_loops_and_unpacking() -> None:
    script = (
        'squares = [i * i for i in range(5) if i % 2 == 0]\n'
        'lookup = {k: v for k, v in pairs}\n'
        'total = 0\n'
        'for index, (name, score) in enumerate(pairs):\n'
        '    total += index * score\n'
        'first, second = sorted(lookup.values())[:2]\n'
    )
    context = run(script, {'pairs': [['a', 3], ['b', 1], ['c', 2]]})
    assert context['squares'] == [0, 4, 16]
    assert context['lookup'] == {'a': 3, 'b': 1, 'c': 2}
    assert context['total'] == 5
    assert (context['first'], context['second']) == (1, 2)


def test_item_access_and_assignment() -> None:
    context = run("v = case['tags'][1]\ncase['status'] = 'open'\nrows[0] = 9", {
        'case': {'tags': ['x', 'y']}, 'rows': [1, 2]})
    assert context['v'] == 'y'
    assert context['case'] == {'tags': ['x', 'y'], 'status': 'open'}
    assert context['rows'] == [9, 2]


def test_whitelisted_helpers() -> None:
    assert evaluate('len(xs) + min(xs) + max(xs) + sum(xs) + abs(-1) + round(2.6)', {'xs': [1, 2, 3]}) == 17
    assert evaluate("any([0, 1]) and all([1]) and isinstance(x, int) and bool('y')", {'x': 1})
    assert evaluate("list(zip([1, 2], 'ab')) + [tuple(set([3]))]") == [(1, 'a'), (2, 'b'), (3,)]
    assert evaluate("dict(a=int('2'), b=float('1.5'), c=str(3))") == {'a': 2, 'b': 1.5, 'c': '3'}


def test_try_except_with_named_exceptions() -> None:
    context = run("try:\n    n = int(raw)\nexcept (ValueError, TypeError):\n    n = 0", {'raw': 'abc'})
    assert context == {'raw': 'abc', 'n': 0}


def test_registered_helper_is_callable() -> None:
    def add_working_days(start: date, days: int) -> date:
        return date.fromordinal(start.toordinal() + days)

    register_helper('add_working_days', add_working_days)
    try:
        context = run('due = add_working_days(date(2025, 9, 26), 3)')
        assert context == {'due': date(2025, 9, 29)}
        assert evaluate('add_working_days(d, 1).day', {'d': date(2025, 1, 1)}) == 2
    finally:
        unregister_helper('add_working_days')
    with pytest.raises(NameError):
        evaluate('add_working_days')


def test_register_helper_refuses_reserved_names() -> None:
    for name in ('len', '_secret', 'open', 'not an identifier'):
        with pytest.raises(ValueError):
            register_helper(name, print)


def test_task_data_can_shadow_helper_names() -> None:
    assert evaluate("date == '2025-09-26' and type == '社区矫正'", {'date': '2025-09-26', 'type': '社区矫正'})


def test_registered_service_is_called() -> None:
    calls: list[dict[str, Any]] = []

    def lookup(context: dict[str, Any], operation_params: dict[str, Any]) -> str:
        calls.append(operation_params)
        return '{"ok": true}'

    register_service('registry.lookup', lookup)
    try:
        result = SandboxedEnvironment().call_service(
            {'x': 1}, operation_name='registry.lookup', operation_params={'id': {'value': 5, 'type': 'int'}})
    finally:
        unregister_service('registry.lookup')
    assert result == '{"ok": true}'
    assert calls == [{'id': {'value': 5, 'type': 'int'}}]


def test_context_is_clean_after_execute() -> None:
    context = run('def helper(v):\n    return v + 1\nout = helper(1)\nf = len\nprint(out)\n')
    assert context == {'out': 2}
    assert not GUARD_NAMES & context.keys()


def test_context_is_clean_after_a_failing_script() -> None:
    context: dict[str, Any] = {}
    with pytest.raises(ZeroDivisionError):
        SandboxedEnvironment().execute('a = 1\nfn = len\nb = 1 / 0', context)
    assert context == {'a': 1}


def test_compiled_code_is_cached() -> None:
    source = "x > 5 and y == 'red' and 'cache-test'"
    assert compile_expression(source) is compile_expression(source)
    assert compile_script('z = 1  # cache-test') is compile_script('z = 1  # cache-test')


def test_runtime_error_is_not_a_refusal() -> None:
    with pytest.raises(KeyError):
        evaluate("d['missing']", {'d': {}})


# --- inside a SpiffWorkflow run -------------------------------------------------------------------

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  id="defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="route" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score"/>
    <bpmn:scriptTask id="score" scriptFormat="python">
      <bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>SCRIPT</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="score" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw" default="to_low">
      <bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>to_high</bpmn:outgoing>
      <bpmn:outgoing>to_low</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="to_high" sourceRef="gw" targetRef="high">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">
        CONDITION
      </bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_low" sourceRef="gw" targetRef="low"/>
    <bpmn:scriptTask id="high" scriptFormat="python">
      <bpmn:incoming>to_high</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>branch = 'high'</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:scriptTask id="low" scriptFormat="python">
      <bpmn:incoming>to_low</bpmn:incoming>
      <bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:script>branch = 'low'</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="high" targetRef="end_high"/>
    <bpmn:sequenceFlow id="f4" sourceRef="low" targetRef="end_low"/>
    <bpmn:endEvent id="end_high"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_low"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

GOOD_SCRIPT = "risk = points * 2\nlevel = 'high' if risk &gt; 10 else 'low'"
GOOD_CONDITION = "risk &gt; 10 and level == 'high'"


def start_workflow(points: int, script: str = GOOD_SCRIPT, condition: str = GOOD_CONDITION) -> BpmnWorkflow:
    parser = CamundaParser()
    xml = BPMN.replace('SCRIPT', script).replace('CONDITION', condition)
    parser.add_bpmn_str(xml.encode('utf-8'))
    workflow = BpmnWorkflow(parser.get_spec('route'), script_engine=SandboxedScriptEngine())
    workflow.get_tasks(state=TaskState.READY)[0].data['points'] = points
    return workflow


def completed_ids(workflow: BpmnWorkflow) -> set[str]:
    return {task.task_spec.bpmn_id for task in workflow.get_tasks(state=TaskState.COMPLETED)}


@pytest.mark.parametrize(('points', 'branch'), [(7, 'high'), (3, 'low')])
def test_workflow_takes_the_right_branch(points: int, branch: str) -> None:
    workflow = start_workflow(points)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    assert workflow.data['branch'] == branch
    assert workflow.data['risk'] == points * 2
    other = 'low' if branch == 'high' else 'high'
    assert branch in completed_ids(workflow) and other not in completed_ids(workflow)
    assert not GUARD_NAMES & workflow.data.keys()


def test_workflow_script_importing_os_fails_with_script_refused() -> None:
    workflow = start_workflow(7, script='import os\nrisk = points * 2')
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    refused = find_script_refused(info.value)
    assert refused is not None and '不允许导入模块' in refused.message
    assert isinstance(info.value.__cause__, ScriptRefused)
    assert info.value.line_number == 1
    [failed] = workflow.get_tasks(state=TaskState.ERROR)
    assert failed.task_spec.bpmn_id == 'score'
    assert failed.data == {'points': 7}
    assert 'high' not in completed_ids(workflow) and 'low' not in completed_ids(workflow)


def test_workflow_refused_condition_fails_with_script_refused() -> None:
    workflow = start_workflow(7, condition='risk.__class__')
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert find_script_refused(info.value) is not None


def test_workflow_ordinary_script_error_is_not_a_refusal() -> None:
    workflow = start_workflow(7, script='risk = missing * 2')
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert find_script_refused(info.value) is None
    assert isinstance(info.value.__cause__, NameError)
