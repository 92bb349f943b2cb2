"""The validation report a deployment shows first: every problem with a BPMN/DMN source, one list.

A report (:class:`ValidationReport`) holds :class:`Finding` records, each naming its rule, its
severity, the element (id and name) and a Chinese message. *Errors* block a deployment; *warnings*
may be accepted by the designer (``engine.definitions.deploy(..., accept_warnings=True)``).

Two sources feed it:

* the hard checks of :func:`engine.specs.parse_definition`, which refuse what the engine cannot run
  (XML and schema errors, element types and extensions it does not implement, timers, expressions
  the sandbox refuses, call activities and decision references that do not resolve, forms, deadline
  properties...). They keep their own rule names (``parse``, ``schema``, ``timer``, ``expression``,
  ``call-activity``, ``decision-ref``, ``dmn``...) and are always errors;
* the lint rules in :data:`RULES` with a check function here, run over the XML of the executable
  process and the processes it calls (or every process, when the file has no single executable
  one), in the spirit of bpmnlint.

bpmnlint's ``recommended`` rules used here, under bpmnlint's names, and the severity chosen for this
product (style rules are warnings; what makes an instance stop or go astray is an error):
``start-event-required``, ``end-event-required``, ``no-disconnected``, ``no-implicit-start``,
``no-implicit-end``, ``conditional-flows``, ``single-blank-start-event``, ``single-event-definition``,
``sub-process-blank-start-event``, ``event-sub-process-typed-start-event``, ``event-based-gateway``,
``ad-hoc-sub-process``, ``no-duplicate-sequence-flows`` and ``no-complex-gateway`` are errors;
``no-implicit-split``, ``fake-join``, ``no-gateway-join-fork``, ``no-inclusive-gateway``,
``superfluous-gateway``, ``superfluous-termination``, ``superfluous-label``, ``label-required``,
``global`` and ``no-bpmndi`` are warnings. (bpmnlint makes ``no-implicit-split``,
``no-gateway-join-fork``, ``label-required`` and ``no-bpmndi`` errors; SpiffWorkflow runs those
diagrams exactly as drawn, so here they are advice.) ``conditional-flows`` looks at gateways only:
a condition on a flow leaving a task is refused outright (``condition-placement``).

Left out, and why:

* ``link-event``: SpiffWorkflow 3.2 has no link events; any link event is refused as an
  ``unsupported-element`` error, so pairing them up would only repeat that.
* ``no-overlapping-elements``: pure layout; the engine never reads shape bounds and the modeler
  shows an overlap to the designer who drew it.

Our own rules: ``user-task-assignee`` (a candidate group or a lane), ``user-task-form``
(``camunda:formKey`` or ``camunda:formData``) and ``user-task-deadline`` (a ``deadline`` or
``clock`` property, see :mod:`engine.deadlines`) are errors, because a legal deadline, someone to do
it and a form to do it with are what every task of this product promises; ``unsupported-element``
names every element the CamundaParser cannot run (an error); ``unknown-group`` warns about a
candidate group, lane or ``escalate.to`` group that no role of this installation has (checked only
when roles are known).

Pure: no database, no Flask.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal, TypeAlias

from lxml import etree

from engine.errors import DeploymentRejected
from engine.i18n import N_, _
from engine.specs import (
    BPMN_NS,
    CAMUNDA_NS,
    DMN_NAMESPACES,
    NON_FLOW_CHILDREN,
    DecisionBundle,
    ProcessBundle,
    main_process_id,
    parse_definition,
    read_xml,
    scoped_processes,
    supported_event_definitions,
    supported_flow_nodes,
)

__all__ = [
    'ERROR',
    'RULES',
    'WARNING',
    'Finding',
    'Rule',
    'Severity',
    'ValidationReport',
    'lint',
    'validate_source',
]

log = logging.getLogger(__name__)

Severity: TypeAlias = Literal['error', 'warning']
ERROR: Final = 'error'
WARNING: Final = 'warning'
#: At most this many findings of each severity are listed; a garbage upload can produce thousands.
MAX_FINDINGS: Final = 200

Element: TypeAlias = Any  # lxml ships no type information; this is an ``etree._Element``.
#: What a check yields: the element a finding is about (None: the whole file) and its message.
Hit: TypeAlias = tuple[Element | None, str]
Check: TypeAlias = Callable[['LintContext'], Iterable[Hit]]

_NS: Final = {'bpmn': BPMN_NS, 'camunda': CAMUNDA_NS}
_BPMNDI_NS: Final = 'http://www.omg.org/spec/BPMN/20100524/DI'
_SUB_SCOPES: Final = frozenset({'subProcess', 'transaction', 'adHocSubProcess'})
_GATEWAYS: Final = frozenset({'exclusiveGateway', 'inclusiveGateway', 'parallelGateway', 'eventBasedGateway',
                              'complexGateway'})
_CONDITIONAL_GATEWAYS: Final = frozenset({'exclusiveGateway', 'inclusiveGateway'})
_EVENTS: Final = frozenset({'startEvent', 'endEvent', 'intermediateCatchEvent', 'intermediateThrowEvent',
                            'boundaryEvent'})
_ACTIVITIES: Final = frozenset({'task', 'userTask', 'serviceTask', 'scriptTask', 'businessRuleTask', 'manualTask',
                                'receiveTask', 'sendTask', 'callActivity', 'subProcess', 'transaction',
                                'adHocSubProcess'})
_GLOBALS: Final = {'message': 'messageRef', 'signal': 'signalRef', 'error': 'errorRef', 'escalation': 'escalationRef'}

# -- messages ---------------------------------------------------------------------------------

MSG_TOO_MANY = N_('还有 {count} 个问题未列出。')
MSG_RULE_FAILED = N_('规则 {rule} 未能完成检查，请联系管理员。')
MSG_INTERNAL = N_('无法校验此文件：{error}')

MSG_START_REQUIRED = N_('{what}{label}缺少开始事件。')
MSG_END_REQUIRED = N_('{what}{label}缺少结束事件：没有结束事件，流程无法正常办结。')
MSG_DISCONNECTED = N_('{what}{label}没有连接任何顺序流。')
MSG_IMPLICIT_START = N_('{what}{label}没有进入的顺序流，永远不会被执行：请从开始事件连线过来。')
MSG_IMPLICIT_END = N_('{what}{label}没有离开的顺序流：请连到下一步或结束事件。')
MSG_IMPLICIT_SPLIT = N_('{what}{label}有多条无条件的出口，会同时走所有出口：请用并行网关明确表示。')
MSG_CONDITIONAL_FLOWS = N_('顺序流{label}从{source}分出，但既没有条件也不是默认顺序流。')
MSG_FAKE_JOIN = N_('{what}{label}有多条进入的顺序流，每条到达都会执行它一次：请先用网关汇合。')
MSG_LABEL = N_('{what}{label}没有名称：办理人员和监督人员看到的只是编号。')
MSG_DUPLICATE_FLOW = N_('顺序流{label}与{other}重复：起点、终点和条件都相同。')
MSG_JOIN_FORK = N_('网关{label}既汇合又分支：请拆成一个汇合网关和一个分支网关。')
MSG_INCLUSIVE = N_('包容网关{label}：汇合时要等哪些分支不易看清，请考虑改用排他或并行网关。')
MSG_SINGLE_BLANK_START = N_('{what}{label}有多个普通开始事件（{ids}），无法确定从哪里开始。')
MSG_SINGLE_DEFINITION = N_('{what}{label}有多个事件定义（{definitions}），引擎只认其中一个。')
MSG_SUPERFLUOUS_GATEWAY = N_('网关{label}只有一个入口和一个出口，可以去掉。')
MSG_SUB_PROCESS_START = N_('子流程中的开始事件{label}须为普通开始事件（不带事件定义）。')
MSG_EVENT_SUB_PROCESS_START = N_('事件子流程中的开始事件{label}须有事件定义（消息、计时器、错误等）。')
MSG_SUPERFLUOUS_TERMINATION = N_('终止结束事件{label}没有可终止的并行分支，用普通结束事件即可。')
MSG_SUPERFLUOUS_LABEL = N_('顺序流{label}不是分支的出口，名称没有作用，可以去掉。')
MSG_EVENT_GATEWAY_OUTGOING = N_('事件网关{label}须有至少两条出口。')
MSG_EVENT_GATEWAY_CONDITION = N_('事件网关的出口{label}不能带条件。')
MSG_AD_HOC_EVENT = N_('自由子流程中不能有开始或结束事件{label}。')
MSG_AD_HOC_CATCH = N_('自由子流程中的中间捕获事件{label}须有离开的顺序流。')
MSG_GLOBAL_NAME = N_('{what}{label}没有名称：引擎按名称匹配它。')
MSG_GLOBAL_UNUSED = N_('{what}{label}没有被任何元素使用。')
MSG_GLOBAL_DUPLICATE = N_('{what}{label}与其他同类元素重名（“{name}”），引擎会把它们当作同一个。')
MSG_NO_DIAGRAM = N_('文件没有图形信息（BPMNDiagram），在建模器和办理页面中无法显示流程图。')
MSG_NO_SHAPE = N_('{what}{label}没有图形信息，在流程图中不会显示。')
MSG_ASSIGNEE = N_('用户任务{label}既没有候选组（camunda:candidateGroups）也不在任何泳道中，没有人能看到它。')
MSG_FORM = N_('用户任务{label}没有表单：请设置 camunda:formKey 或 camunda:formData 表单字段。')
MSG_DEADLINE = N_('用户任务{label}没有期限：请在扩展属性中设置 deadline（如“10 working_days”）或 clock。')
MSG_COMPLEX_GATEWAY = N_('复杂网关{label}不受支持：本系统的流程引擎无法执行它。')
MSG_UNSUPPORTED = N_('{what}{label}的类型“{tag}”不受支持：本系统的流程引擎无法执行它。')
MSG_UNSUPPORTED_DEFINITION = N_('{what}{label}的“{definition}”事件定义不受支持：引擎会把它当作普通事件处理。')
MSG_UNKNOWN_GROUP = N_('{what}{label}的{source}“{group}”不是本系统已有的角色代码，目前没有人能办理或收到它。')

_SOURCE_GROUPS = N_('候选组')
_SOURCE_LANE = N_('泳道')
_SOURCE_ESCALATION = N_('升级对象 escalate.to')

# What an element is called in a message, by BPMN local name.
_WHAT: Final = {
    'process': N_('流程'), 'subProcess': N_('子流程'), 'transaction': N_('事务子流程'),
    'adHocSubProcess': N_('自由子流程'), 'task': N_('任务'), 'userTask': N_('用户任务'), 'serviceTask': N_('服务任务'),
    'scriptTask': N_('脚本任务'), 'businessRuleTask': N_('业务规则任务'), 'manualTask': N_('手工任务'),
    'receiveTask': N_('接收任务'), 'sendTask': N_('发送任务'), 'callActivity': N_('调用活动'),
    'exclusiveGateway': N_('排他网关'), 'inclusiveGateway': N_('包容网关'), 'parallelGateway': N_('并行网关'),
    'eventBasedGateway': N_('事件网关'), 'complexGateway': N_('复杂网关'), 'startEvent': N_('开始事件'),
    'endEvent': N_('结束事件'), 'intermediateCatchEvent': N_('中间捕获事件'),
    'intermediateThrowEvent': N_('中间抛出事件'), 'boundaryEvent': N_('边界事件'), 'sequenceFlow': N_('顺序流'),
    'message': N_('消息'), 'signal': N_('信号'), 'error': N_('错误'), 'escalation': N_('升级'),
    'participant': N_('池'), 'lane': N_('泳道'),
}
_ELEMENT = N_('元素')


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem found in a source.

    :param rule: the rule's name (bpmnlint's where it is one of theirs)
    :param severity: ``"error"`` (blocks the deployment) or ``"warning"`` (may be accepted)
    :param element_id: the BPMN/DMN element's id; None when the finding is about the whole file
    :param element_name: the element's ``name``, if it has one
    :param message: what is wrong, in Simplified Chinese
    """

    rule: str
    severity: Severity
    element_id: str | None
    element_name: str | None
    message: str

    def to_dict(self) -> dict[str, str | None]:
        """The finding as JSON-ready data (the API, the audit log and the modeler page use this)."""
        return {'rule': self.rule, 'severity': self.severity, 'element_id': self.element_id,
                'element_name': self.element_name, 'message': self.message}


@dataclass(frozen=True)
class ValidationReport:
    """Everything a deployment of one source would run into; nothing is stored while making it.

    :param key: the definition key it would deploy as (None when that cannot be told)
    :param kind: ``"bpmn"``, ``"dmn"``, or None when the source is not a BPMN/DMN document
    :param name: the process or decision name, if known
    :param errors: findings that block the deployment
    :param warnings: findings a designer may accept
    """

    key: str | None
    kind: str | None
    name: str | None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """Whether the source may be deployed (possibly after accepting the warnings)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {'key': self.key, 'kind': self.kind, 'name': self.name, 'valid': self.valid,
                'errors': [f.to_dict() for f in self.errors], 'warnings': [f.to_dict() for f in self.warnings]}


@dataclass(frozen=True)
class Rule:
    """A named check and its default severity.

    :param name: the rule name findings carry
    :param severity: the severity of its findings
    :param description: what it checks (a msgid; translate with ``_()``)
    :param check: yields ``(element, message)`` per finding; None for the hard checks that
        :func:`engine.specs.parse_definition` makes while parsing
    """

    name: str
    severity: Severity
    description: str
    check: Check | None = None


#: Every rule by name, in the order their findings are listed.
RULES: dict[str, Rule] = {}


def _declare(name: str, severity: Severity, description: str) -> None:
    RULES[name] = Rule(name, severity, description)


def rule(name: str, severity: Severity, description: str) -> Callable[[Check], Check]:
    """Register the decorated function as the check of rule ``name``."""
    def register(check: Check) -> Check:
        RULES[name] = Rule(name, severity, description, check)
        return check
    return register


# The hard checks of engine.specs: always errors.
_declare('parse', ERROR, N_('文件须为格式正确的 XML，且流程引擎能够解析'))
_declare('schema', ERROR, N_('文件须符合 BPMN 2.0 / DMN 的 XML 规范'))
_declare('executable-process', ERROR, N_('须有且只有一个未被调用的可执行流程'))
_declare('unsupported-extension', ERROR, N_('不使用引擎会忽略的 Camunda 扩展，不使用 Camunda 8 的扩展'))
_declare('service-task', ERROR, N_('服务任务须为外部任务，主题须为已注册的服务操作'))
_declare('user-task-priority', ERROR, N_('用户任务的 camunda:priority 须为 0 到 100 的整数'))
_declare('condition-placement', ERROR, N_('只有排他网关和包容网关的非默认出口可以带条件'))
_declare('expression', ERROR, N_('条件、脚本、消息和循环表达式须能在沙箱中编译'))
_declare('timer', ERROR, N_('计时器须为有效的 ISO 8601 日期、时长或周期表达式'))
_declare('decision-ref', ERROR, N_('业务规则任务引用的决策须已部署'))
_declare('call-activity', ERROR, N_('调用活动引用的流程须在同一文件中且可执行'))
_declare('form', ERROR, N_('表单定义须有效，且只用在用户任务和开始事件上'))
_declare('unreachable', ERROR, N_('每个元素都须能从开始事件到达'))
_declare('dmn', ERROR, N_('决策表须能被引擎执行'))


# -- the context a check reads ----------------------------------------------------------------


def _local(element: Element) -> str:
    """Local name of a BPMN-namespace element, '' for anything else (comments, extensions)."""
    if not isinstance(element.tag, str):
        return ''
    qname = etree.QName(element)
    return qname.localname if qname.namespace == BPMN_NS else ''


def _name(element: Element) -> str | None:
    # Modelers keep the line breaks a designer typed into a label; a message wants one line.
    return ' '.join((element.get('name') or '').split()) or None


def _label(element: Element | None) -> str:
    """``“名称”（id）``, or whichever of the two the element has."""
    if element is None:
        return ''
    name, element_id = _name(element), element.get('id')
    if name and element_id:
        return f'“{name}”（{element_id}）'
    return f'“{name or element_id}”' if name or element_id else ''


def _what(element: Element) -> str:
    """What the element is, in words."""
    return _(_WHAT.get(_local(element), _ELEMENT))


def _event_definitions(node: Element) -> list[str]:
    return [local for child in node
            if (local := _local(child)).endswith('EventDefinition') or local == 'eventDefinitionRef']


def _is_true(element: Element, attribute: str) -> bool:
    return (element.get(attribute) or '').strip().lower() == 'true'


def _is_event_sub_process(node: Element) -> bool:
    return _local(node) == 'subProcess' and _is_true(node, 'triggeredByEvent')


def _is_link(node: Element) -> bool:
    # Link events are refused as unsupported-element; their missing flows are not news.
    return 'linkEventDefinition' in _event_definitions(node)


def _is_exempt(node: Element) -> bool:
    """Nodes that legitimately live without sequence flows: event subprocesses, compensation
    handlers and the contents of ad-hoc subprocesses."""
    parent = node.getparent()
    return (_is_event_sub_process(node) or _is_true(node, 'isForCompensation')
            or (parent is not None and _local(parent) == 'adHocSubProcess'))


class LintContext:
    """The parts of a BPMN document the checks read, computed once.

    :param root: the ``bpmn:definitions`` element
    :param processes: the processes to check
    :param known_groups: role codes of this installation (None or empty: not checked)
    """

    def __init__(self, root: Element, processes: Sequence[Element], known_groups: frozenset[str] | None) -> None:
        self.root = root
        self.processes = list(processes)
        self.known_groups = known_groups or frozenset()

    @cached_property
    def by_id(self) -> dict[str, Element]:
        return {el.get('id'): el for el in self.root.iter() if isinstance(el.tag, str) and el.get('id')}

    @cached_property
    def scopes(self) -> list[Element]:
        """Every checked process and every (sub)process inside them."""
        scopes: list[Element] = []
        for process in self.processes:
            scopes.append(process)
            scopes.extend(el for el in process.iter(*(f'{{{BPMN_NS}}}{s}' for s in _SUB_SCOPES)))
        return scopes

    def nodes(self, scope: Element) -> list[Element]:
        """The flow nodes directly inside ``scope``."""
        return [child for child in scope if (local := _local(child)) and local not in NON_FLOW_CHILDREN]

    @cached_property
    def all_nodes(self) -> list[Element]:
        return [node for scope in self.scopes for node in self.nodes(scope)]

    @cached_property
    def flows(self) -> list[Element]:
        return [flow for scope in self.scopes for flow in scope.iterfind('bpmn:sequenceFlow', _NS)]

    @cached_property
    def _flow_maps(self) -> tuple[dict[str, list[Element]], dict[str, list[Element]]]:
        incoming: dict[str, list[Element]] = defaultdict(list)
        outgoing: dict[str, list[Element]] = defaultdict(list)
        for flow in self.flows:
            outgoing[flow.get('sourceRef') or ''].append(flow)
            incoming[flow.get('targetRef') or ''].append(flow)
        return incoming, outgoing

    def incoming(self, node: Element) -> list[Element]:
        return self._flow_maps[0].get(node.get('id') or '', [])

    def outgoing(self, node: Element) -> list[Element]:
        return self._flow_maps[1].get(node.get('id') or '', [])

    def is_disconnected(self, node: Element) -> bool:
        return (not self.incoming(node) and not self.outgoing(node) and not _is_exempt(node)
                and _local(node) != 'boundaryEvent')

    @cached_property
    def lanes(self) -> dict[str, str]:
        """Flow node id → the name of the innermost lane that lists it."""
        found: dict[str, str] = {}
        # Document order visits outer lanes first, so inner lanes overwrite them.
        for lane in self.root.iter(f'{{{BPMN_NS}}}lane'):
            for ref in lane.iterfind('bpmn:flowNodeRef', _NS):
                if (ref.text or '').strip() and _name(lane):
                    found[(ref.text or '').strip()] = str(_name(lane))
        return found

    def lane_of(self, node: Element) -> str | None:
        """The lane of ``node``, else of the (sub)process it is in, as SpiffWorkflow assigns lanes."""
        current = node
        while current is not None and _local(current) != 'process':
            lane = self.lanes.get(current.get('id') or '')
            if lane:
                return lane
            current = current.getparent()
        return None

    @cached_property
    def diagram_ids(self) -> set[str] | None:
        """Ids of the elements drawn in the diagram; None when the file has no diagram at all."""
        if next(self.root.iter(f'{{{_BPMNDI_NS}}}BPMNDiagram'), None) is None:
            return None
        return {str(el.get('bpmnElement')) for el in self.root.iter(f'{{{_BPMNDI_NS}}}BPMNShape',
                                                                     f'{{{_BPMNDI_NS}}}BPMNEdge')}


# -- bpmnlint's rules -------------------------------------------------------------------------


@rule('start-event-required', ERROR, N_('每个流程和子流程都须有开始事件'))
def _start_event_required(ctx: LintContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if _local(scope) != 'adHocSubProcess' and not scope.findall('bpmn:startEvent', _NS):
            yield scope, _(MSG_START_REQUIRED).format(what=_what(scope), label=_label(scope))


@rule('end-event-required', ERROR, N_('每个流程和子流程都须有结束事件'))
def _end_event_required(ctx: LintContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if _local(scope) != 'adHocSubProcess' and not scope.findall('bpmn:endEvent', _NS):
            yield scope, _(MSG_END_REQUIRED).format(what=_what(scope), label=_label(scope))


@rule('no-disconnected', ERROR, N_('每个元素都须有顺序流连接'))
def _no_disconnected(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if ctx.is_disconnected(node):
            yield node, _(MSG_DISCONNECTED).format(what=_what(node), label=_label(node))


@rule('no-implicit-start', ERROR, N_('除开始事件和边界事件外，每个元素都须有进入的顺序流'))
def _no_implicit_start(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if (_local(node) not in ('startEvent', 'boundaryEvent') and not ctx.incoming(node)
                and not _is_exempt(node) and not _is_link(node) and not ctx.is_disconnected(node)):
            yield node, _(MSG_IMPLICIT_START).format(what=_what(node), label=_label(node))


@rule('no-implicit-end', ERROR, N_('除结束事件外，每个元素都须有离开的顺序流'))
def _no_implicit_end(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        compensation = 'compensateEventDefinition' in _event_definitions(node)
        if (_local(node) != 'endEvent' and not ctx.outgoing(node) and not compensation
                and not _is_exempt(node) and not _is_link(node) and not ctx.is_disconnected(node)):
            yield node, _(MSG_IMPLICIT_END).format(what=_what(node), label=_label(node))


def _is_default(source: Element, flow: Element) -> bool:
    return bool(source.get('default')) and source.get('default') == flow.get('id')


def _has_condition(flow: Element) -> bool:
    return flow.find('bpmn:conditionExpression', _NS) is not None


@rule('no-implicit-split', WARNING, N_('分支须用网关表示，不要从任务或事件直接拉出多条无条件出口'))
def _no_implicit_split(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if _local(node) in _GATEWAYS:
            continue
        plain = [f for f in ctx.outgoing(node) if not _has_condition(f) and not _is_default(node, f)]
        if len(plain) > 1:
            yield node, _(MSG_IMPLICIT_SPLIT).format(what=_what(node), label=_label(node))


@rule('conditional-flows', ERROR, N_('排他网关和包容网关分出的每条出口都须有条件，或是默认顺序流'))
def _conditional_flows(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        outgoing = ctx.outgoing(node)
        if _local(node) not in _CONDITIONAL_GATEWAYS or len(outgoing) < 2:
            continue
        for flow in outgoing:
            if not _has_condition(flow) and not _is_default(node, flow):
                source = f'{_what(node)}{_label(node)}'
                yield flow, _(MSG_CONDITIONAL_FLOWS).format(label=_label(flow), source=source)


@rule('fake-join', WARNING, N_('多条顺序流汇合须经网关，不要直接连到任务上'))
def _fake_join(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if _local(node) in _ACTIVITIES and len(ctx.incoming(node)) > 1:
            yield node, _(MSG_FAKE_JOIN).format(what=_what(node), label=_label(node))


def _needs_label(ctx: LintContext, node: Element) -> bool:
    local = _local(node)
    if local in _ACTIVITIES:
        return True
    if local in _CONDITIONAL_GATEWAYS | {'complexGateway'}:
        return len(ctx.outgoing(node)) > 1  # a fork asks a question; a join needs no words
    # An event that waits for or sends something says what; a plain start or end needs no words.
    return local in _EVENTS and bool(_event_definitions(node))


@rule('label-required', WARNING, N_('任务、分支网关和带事件定义的事件须有名称'))
def _label_required(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if not _name(node) and _needs_label(ctx, node):
            yield node, _(MSG_LABEL).format(what=_what(node), label=_label(node))
    for local in ('participant', 'lane'):
        for element in ctx.root.iter(f'{{{BPMN_NS}}}{local}'):
            if not _name(element) and _in_scope(ctx, element):
                yield element, _(MSG_LABEL).format(what=_what(element), label=_label(element))


def _in_scope(ctx: LintContext, element: Element) -> bool:
    """Whether a participant or lane belongs to a checked process."""
    if _local(element) == 'participant':
        return element.get('processRef') in {p.get('id') for p in ctx.processes}
    return any(element in p.iter(f'{{{BPMN_NS}}}lane') for p in ctx.processes)


@rule('no-complex-gateway', ERROR, N_('不使用复杂网关（引擎无法执行）'))
def _no_complex_gateway(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if _local(node) == 'complexGateway':
            yield node, _(MSG_COMPLEX_GATEWAY).format(label=_label(node))


@rule('no-duplicate-sequence-flows', ERROR, N_('两个元素之间不能有重复的顺序流'))
def _no_duplicate_sequence_flows(ctx: LintContext) -> Iterator[Hit]:
    seen: dict[tuple[str, str, str], Element] = {}
    for flow in ctx.flows:
        condition = flow.find('bpmn:conditionExpression', _NS)
        key = (flow.get('sourceRef') or '', flow.get('targetRef') or '',
               (condition.text or '').strip() if condition is not None else '')
        if key in seen:
            yield flow, _(MSG_DUPLICATE_FLOW).format(label=_label(flow), other=_label(seen[key]))
        else:
            seen[key] = flow


@rule('no-gateway-join-fork', WARNING, N_('一个网关不要同时汇合和分支'))
def _no_gateway_join_fork(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if _local(node) in _GATEWAYS and len(ctx.incoming(node)) > 1 and len(ctx.outgoing(node)) > 1:
            yield node, _(MSG_JOIN_FORK).format(label=_label(node))


@rule('no-inclusive-gateway', WARNING, N_('慎用包容网关'))
def _no_inclusive_gateway(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if _local(node) == 'inclusiveGateway':
            yield node, _(MSG_INCLUSIVE).format(label=_label(node))


@rule('single-blank-start-event', ERROR, N_('每个流程或子流程最多一个普通开始事件'))
def _single_blank_start_event(ctx: LintContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        blank = [n for n in scope.iterfind('bpmn:startEvent', _NS) if not _event_definitions(n)]
        if len(blank) > 1:
            ids = '、'.join(str(n.get('id')) for n in blank)
            yield scope, _(MSG_SINGLE_BLANK_START).format(what=_what(scope), label=_label(scope), ids=ids)


@rule('single-event-definition', ERROR, N_('每个事件最多一个事件定义'))
def _single_event_definition(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        definitions = _event_definitions(node)
        if len(definitions) > 1:
            yield node, _(MSG_SINGLE_DEFINITION).format(what=_what(node), label=_label(node),
                                                        definitions='、'.join(definitions))


@rule('superfluous-gateway', WARNING, N_('只有一个入口和一个出口的网关是多余的'))
def _superfluous_gateway(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if _local(node) in _GATEWAYS and len(ctx.incoming(node)) == 1 and len(ctx.outgoing(node)) == 1:
            yield node, _(MSG_SUPERFLUOUS_GATEWAY).format(label=_label(node))


@rule('sub-process-blank-start-event', ERROR, N_('子流程须以普通开始事件开始'))
def _sub_process_blank_start_event(ctx: LintContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if _local(scope) in ('subProcess', 'transaction') and not _is_event_sub_process(scope):
            for start in scope.iterfind('bpmn:startEvent', _NS):
                if _event_definitions(start):
                    yield start, _(MSG_SUB_PROCESS_START).format(label=_label(start))


@rule('event-sub-process-typed-start-event', ERROR, N_('事件子流程须以带事件定义的开始事件开始'))
def _event_sub_process_typed_start_event(ctx: LintContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if _is_event_sub_process(scope):
            for start in scope.iterfind('bpmn:startEvent', _NS):
                if not _event_definitions(start):
                    yield start, _(MSG_EVENT_SUB_PROCESS_START).format(label=_label(start))


def _has_concurrency(ctx: LintContext, scope: Element) -> bool:
    """Whether more than one token can be alive in ``scope`` (so that terminating means something)."""
    for node in ctx.nodes(scope):
        local, outgoing = _local(node), ctx.outgoing(node)
        if local in ('parallelGateway', 'inclusiveGateway', 'complexGateway') and len(outgoing) > 1:
            return True
        if local not in _GATEWAYS and len([f for f in outgoing if not _is_default(node, f)]) > 1:
            return True
        if local == 'boundaryEvent' and (node.get('cancelActivity') or '').strip().lower() == 'false':
            return True
        if _is_event_sub_process(node) or _is_true(node, 'isForCompensation'):
            return True
    return False


@rule('superfluous-termination', WARNING, N_('没有并行分支时不需要终止结束事件'))
def _superfluous_termination(ctx: LintContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if _has_concurrency(ctx, scope):
            continue
        for end in scope.iterfind('bpmn:endEvent', _NS):
            if 'terminateEventDefinition' in _event_definitions(end):
                yield end, _(MSG_SUPERFLUOUS_TERMINATION).format(label=_label(end))


@rule('superfluous-label', WARNING, N_('只有分支的出口、带条件的和默认的顺序流需要名称'))
def _superfluous_label(ctx: LintContext) -> Iterator[Hit]:
    for flow in ctx.flows:
        if not _name(flow) or _has_condition(flow):
            continue
        source = ctx.by_id.get(flow.get('sourceRef') or '')
        if source is None or _is_default(source, flow):
            continue
        if _local(source) in _GATEWAYS and len(ctx.outgoing(source)) > 1:
            continue
        yield flow, _(MSG_SUPERFLUOUS_LABEL).format(label=_label(flow))


@rule('event-based-gateway', ERROR, N_('事件网关须有至少两条不带条件的出口'))
def _event_based_gateway(ctx: LintContext) -> Iterator[Hit]:
    for node in ctx.all_nodes:
        if _local(node) != 'eventBasedGateway':
            continue
        outgoing = ctx.outgoing(node)
        if len(outgoing) < 2:
            yield node, _(MSG_EVENT_GATEWAY_OUTGOING).format(label=_label(node))
        for flow in outgoing:
            if _has_condition(flow):
                yield flow, _(MSG_EVENT_GATEWAY_CONDITION).format(label=_label(flow))


@rule('ad-hoc-sub-process', ERROR, N_('自由子流程中不能有开始和结束事件，中间捕获事件须有出口'))
def _ad_hoc_sub_process(ctx: LintContext) -> Iterator[Hit]:
    for scope in ctx.scopes:
        if _local(scope) != 'adHocSubProcess':
            continue
        for node in ctx.nodes(scope):
            if _local(node) in ('startEvent', 'endEvent'):
                yield node, _(MSG_AD_HOC_EVENT).format(label=_label(node))
            elif _local(node) == 'intermediateCatchEvent' and not ctx.outgoing(node):
                yield node, _(MSG_AD_HOC_CATCH).format(label=_label(node))


def _global_references(ctx: LintContext) -> set[str]:
    """Ids of messages, signals, errors and escalations something refers to."""
    refs: set[str] = set()
    for attribute in (*_GLOBALS.values(), 'messageRef'):
        refs.update(str(value) for value in ctx.root.xpath(f'.//@{attribute}'))
    return refs


@rule('global', WARNING, N_('消息、信号、错误和升级须有名称、被使用且不重名'))
def _global(ctx: LintContext) -> Iterator[Hit]:
    used = _global_references(ctx)
    for local in _GLOBALS:
        elements = ctx.root.findall(f'bpmn:{local}', _NS)
        names = [_name(el) for el in elements]
        for element, name in zip(elements, names, strict=True):
            what, label = _what(element), _label(element)
            if name is None:
                yield element, _(MSG_GLOBAL_NAME).format(what=what, label=label)
            elif names.count(name) > 1:
                yield element, _(MSG_GLOBAL_DUPLICATE).format(what=what, label=label, name=name)
            if element.get('id') not in used:
                yield element, _(MSG_GLOBAL_UNUSED).format(what=what, label=label)


@rule('no-bpmndi', WARNING, N_('每个元素都须画在流程图中'))
def _no_bpmndi(ctx: LintContext) -> Iterator[Hit]:
    drawn = ctx.diagram_ids
    if drawn is None:
        yield None, _(MSG_NO_DIAGRAM)
        return
    for element in [*ctx.all_nodes, *ctx.flows]:
        if element.get('id') not in drawn:
            yield element, _(MSG_NO_SHAPE).format(what=_what(element), label=_label(element))


# -- our rules --------------------------------------------------------------------------------


def _user_tasks(ctx: LintContext) -> Iterator[Element]:
    return (node for node in ctx.all_nodes if _local(node) == 'userTask')


def _candidate_groups(node: Element) -> list[str]:
    text = node.get(f'{{{CAMUNDA_NS}}}candidateGroups') or ''
    return [group.strip() for group in text.split(',') if group.strip()]


def _properties(node: Element) -> dict[str, str]:
    return {str(prop.get('name')): (prop.get('value') or '').strip()
            for prop in node.iterfind('bpmn:extensionElements/camunda:properties/camunda:property', _NS)
            if prop.get('name')}


@rule('user-task-assignee', ERROR, N_('每个用户任务都须有候选组或所在泳道'))
def _user_task_assignee(ctx: LintContext) -> Iterator[Hit]:
    for node in _user_tasks(ctx):
        if not _candidate_groups(node) and not ctx.lane_of(node):
            yield node, _(MSG_ASSIGNEE).format(label=_label(node))


@rule('user-task-form', ERROR, N_('每个用户任务都须有表单（camunda:formKey 或 camunda:formData）'))
def _user_task_form(ctx: LintContext) -> Iterator[Hit]:
    for node in _user_tasks(ctx):
        has_key = bool((node.get(f'{{{CAMUNDA_NS}}}formKey') or '').strip())
        if not has_key and node.find('bpmn:extensionElements/camunda:formData', _NS) is None:
            yield node, _(MSG_FORM).format(label=_label(node))


@rule('user-task-deadline', ERROR, N_('每个用户任务都须有法定期限（deadline 或 clock 属性），且期限属性须有效'))
def _user_task_deadline(ctx: LintContext) -> Iterator[Hit]:
    for node in _user_tasks(ctx):
        properties = _properties(node)
        if not properties.get('deadline') and not properties.get('clock'):
            yield node, _(MSG_DEADLINE).format(label=_label(node))


def _task_groups(ctx: LintContext, node: Element) -> Iterator[tuple[str, str]]:
    """``(source, group)`` for every role a user task is offered or escalated to."""
    groups = _candidate_groups(node)
    lane = ctx.lane_of(node)
    for group in groups:
        yield _(_SOURCE_GROUPS), group
    if not groups and lane:
        yield _(_SOURCE_LANE), lane
    escalation = _properties(node).get('escalate.to')
    if escalation:
        yield _(_SOURCE_ESCALATION), escalation


@rule('unknown-group', WARNING, N_('候选组、泳道和升级对象须是本系统已有的角色代码'))
def _unknown_group(ctx: LintContext) -> Iterator[Hit]:
    if not ctx.known_groups:
        return
    for node in _user_tasks(ctx):
        for source, group in _task_groups(ctx, node):
            if group not in ctx.known_groups:
                yield node, _(MSG_UNKNOWN_GROUP).format(what=_what(node), label=_label(node), source=source,
                                                        group=group)


@rule('unsupported-element', ERROR, N_('只使用流程引擎能执行的元素和事件定义'))
def _unsupported_element(ctx: LintContext) -> Iterator[Hit]:
    runnable = supported_flow_nodes()
    for node in ctx.all_nodes:
        local = _local(node)
        if local not in runnable and local != 'complexGateway':
            yield node, _(MSG_UNSUPPORTED).format(what=_what(node), label=_label(node), tag=f'bpmn:{local}')
            continue
        allowed = supported_event_definitions(local)
        if allowed is None:
            continue
        for definition in _event_definitions(node):
            if definition not in allowed:
                yield node, _(MSG_UNSUPPORTED_DEFINITION).format(what=_what(node), label=_label(node),
                                                                 definition=f'bpmn:{definition}')


# Rules whose lint check restates a hard check over every process, naming the element in its message;
# where both report an element, the lint finding is kept.
_RESTATED: Final = frozenset({'unsupported-element', 'no-complex-gateway'})
# A finding of the key rule on an element makes these rules' findings on it redundant.
_SUPERSEDES: Final = {
    'no-disconnected': frozenset({'unreachable'}),
    'no-implicit-start': frozenset({'unreachable'}),
}


# -- running ----------------------------------------------------------------------------------


def lint(root: Element, *, known_groups: frozenset[str] | None = None) -> list[Finding]:
    """Run every rule that has a check over a BPMN document.

    :param root: the ``bpmn:definitions`` element (see :func:`engine.specs.read_xml`)
    :param known_groups: role codes for ``unknown-group``; None or empty skips that rule
    :return: findings in rule order
    """
    ctx = LintContext(root, scoped_processes(root), known_groups)
    findings: list[Finding] = []
    for entry in RULES.values():
        if entry.check is not None:
            findings.extend(_run(entry, ctx))
    return findings


def _run(entry: Rule, ctx: LintContext) -> list[Finding]:
    assert entry.check is not None
    try:
        return [_finding(entry.name, entry.severity, element, message) for element, message in entry.check(ctx)]
    except Exception:  # a rule's bug must not hide the rest of the report or break a deployment
        log.exception('lint rule %s failed', entry.name)
        return [Finding(entry.name, WARNING, None, None, _(MSG_RULE_FAILED).format(rule=entry.name))]


def _finding(rule_name: str, severity: Severity, element: Element | None, message: str) -> Finding:
    element_id = element.get('id') if element is not None else None
    return Finding(rule_name, severity, element_id or None, _name(element) if element is not None else None, message)


def validate_source(source: bytes | str, *, dmn_sources: Sequence[bytes | str] = (), filename: str = 'upload',
                    known_groups: frozenset[str] | None = None) -> ValidationReport:
    """Check a BPMN or DMN source with every hard check and lint rule; never raises on bad input.

    :param source: the XML
    :param dmn_sources: deployed DMN sources business rule tasks may refer to
    :param filename: shown in SpiffWorkflow's messages
    :param known_groups: role codes for ``unknown-group``
    :return: the report; ``report.valid`` tells whether it may be deployed
    """
    try:
        root = read_xml(source)
    except DeploymentRejected as rejected:
        return _report(None, None, None, _from_problems(rejected.problems, {}))
    try:
        return _validate_document(root, source, dmn_sources, filename, known_groups)
    except Exception as error:  # the checks are hardened; this is the last line, never a crash
        log.exception('validation of %s failed', filename)
        failure = Finding('parse', ERROR, None, None, _(MSG_INTERNAL).format(error=error.__class__.__name__))
        return _report(None, None, None, [failure])


def _validate_document(root: Element, source: bytes | str, dmn_sources: Sequence[bytes | str], filename: str,
                       known_groups: frozenset[str] | None) -> ValidationReport:
    by_id = {el.get('id'): el for el in root.iter() if isinstance(el.tag, str) and el.get('id')}
    bundle: ProcessBundle | DecisionBundle | None = None
    findings: list[Finding] = []
    try:
        bundle = parse_definition(source, dmn_sources=dmn_sources, filename=filename)
    except DeploymentRejected as rejected:
        findings.extend(_from_problems(rejected.problems, by_id))
    kind = _kind(root)
    if kind == 'bpmn':
        linted = lint(root, known_groups=known_groups)
        restated = {(f.rule, f.element_id) for f in linted if f.rule in _RESTATED}
        findings = [f for f in findings if (f.rule, f.element_id) not in restated] + linted
    if bundle is not None:
        return _report(bundle.key, kind, bundle.name, findings)
    key, name = _identity(root, kind)
    return _report(key, kind, name, findings)


def _kind(root: Element) -> str | None:
    """``"bpmn"`` or ``"dmn"`` for a ``definitions`` root of either standard, else None."""
    qname = etree.QName(root)
    if qname.localname != 'definitions':
        return None
    return 'bpmn' if qname.namespace == BPMN_NS else 'dmn' if qname.namespace in DMN_NAMESPACES else None


def _identity(root: Element, kind: str | None) -> tuple[str | None, str | None]:
    """Key and name of a source that did not parse, as far as they can be told."""
    if kind == 'dmn':
        decision = next((el for el in root if isinstance(el.tag, str) and etree.QName(el).localname == 'decision'),
                        None)
        key = root.get('id') or (decision.get('id') if decision is not None else None)
        return key, (_name(decision) if decision is not None else None) or _name(root)
    main_id = main_process_id(root) if kind == 'bpmn' else None
    if main_id is None:
        return None, None
    main = next(p for p in root.iterfind('bpmn:process', _NS) if p.get('id') == main_id)
    return main_id, _name(main)


def _from_problems(problems: Iterable[dict[str, Any]], by_id: dict[str, Element]) -> list[Finding]:
    """The hard checks' problems (``{"element", "message", "rule"}``) as findings."""
    findings = []
    for problem in problems:
        element_id = problem.get('element') or None
        element = by_id.get(element_id) if element_id else None
        rule_name = str(problem.get('rule') or 'parse')
        findings.append(Finding(rule_name, ERROR, element_id, _name(element) if element is not None else None,
                                str(problem.get('message', ''))))
    return findings


def _report(key: str | None, kind: str | None, name: str | None, findings: list[Finding]) -> ValidationReport:
    """Sort findings by severity, drop repeats and superseded ones, cap each list."""
    unique = list(dict.fromkeys(findings))
    superseded = {(rule_name, f.element_id) for f in unique for rule_name in _SUPERSEDES.get(f.rule, ())}
    kept = [f for f in unique if (f.rule, f.element_id) not in superseded]
    errors = [f for f in kept if f.severity == ERROR]
    warnings = [f for f in kept if f.severity == WARNING]
    return ValidationReport(key, kind, name, _capped(errors, ERROR), _capped(warnings, WARNING))


def _capped(findings: list[Finding], severity: Severity) -> list[Finding]:
    if len(findings) <= MAX_FINDINGS:
        return findings
    more = Finding('report', severity, None, None, _(MSG_TOO_MANY).format(count=len(findings) - MAX_FINDINGS))
    return [*findings[:MAX_FINDINGS], more]
